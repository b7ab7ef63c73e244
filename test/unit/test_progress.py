from realrl_bringup.progress import EpisodeLog, Progress


def test_success_rate_is_over_a_full_window_only():
    p = Progress(window=4)
    for ok in (True, True, True):
        p.on_episode(ok)
    assert p.success_rate == 1.0 and not p.reached(0.9)  # 3 episodes are not a window
    p.on_episode(False)
    assert p.success_rate == 0.75 and not p.reached(0.9)
    p.on_episode(True)
    assert p.success_rate == 0.75
    p.on_episode(True)
    assert p.reached(0.75) and p.episodes == 6 and p.successes == 5


def test_progress_line_names_the_nodes_that_are_down():
    p = Progress()
    assert 'nodes 2/2 up' in p.line(['/a', '/b'], [])
    assert 'nodes 1/2 up (down: /policy)' in p.line(['/a'], ['/policy'])


def test_episode_log_round_trip(tmp_path):
    log = EpisodeLog(tmp_path / 'm' / 'episodes.jsonl')
    log.append({'episode_id': 1, 'success': True})
    log.append({'episode_id': 2, 'success': False})
    assert [r['episode_id'] for r in log.read()] == [1, 2]


def test_a_resumed_run_continues_its_time_axis_past_a_torn_line(tmp_path):
    log = EpisodeLog(tmp_path / 'episodes.jsonl')
    log.append({'time_s': 41.5})
    with open(log.path, 'a') as f:
        f.write('{"time_s": 4')  # cut short by a crash
    assert log.last_time() == 41.5
    assert Progress(time_offset=log.last_time()).elapsed() >= 41.5


def test_progress_line_names_the_robots_that_wait_for_reward_labels():
    p = Progress()
    p.waiting.update({'arm0': '', 'arm1': 'reward_label', 'ur0': 'reward_label'})
    assert p.line(['/a'], []).endswith('nodes 1/1 up | waiting for reward labels: arm1, ur0')
    p.waiting.update({'arm1': '', 'ur0': 'action'})
    assert p.line(['/a'], []).endswith('nodes 1/1 up | waiting for actions: ur0')
    p.waiting['ur0'] = ''
    assert 'waiting' not in p.line(['/a'], [])


def test_summary_counts_the_actions_lost_on_the_way():
    p = Progress()
    p.lost.update({'arm0': 3, 'arm1': 2})
    p.rejected.update({'arm0': 1})
    assert (p.summary()['lost_actions'], p.summary()['rejected_actions']) == (5, 1)
