"""Robot drivers of realrl: the episode loop and driver node, robots and cameras."""
