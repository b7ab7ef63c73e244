"""Starting realrl graphs: the realrl command, graph files, the run and its monitor."""
