"""The demo's progress board: one line per student (iteration / total, it/s, ETA, latest held-out PSNR), the total
ETA, and a heartbeat so that the demo is never silent for longer than the interval."""
import io
import time

from dukd_arch.demo.progress import ProgressBoard


class FakeClock:

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_lines_show_each_run_and_a_total_eta_over_the_parallel_slots():
    clock, out = FakeClock(), io.StringIO()
    board = ProgressBoard({'DUKD': 100, 'output KD': 100, 'student from scratch': 100}, jobs=2, interval=0,
                          stream=out, clock=clock)
    try:
        board.start('DUKD')
        board.start('output KD')
        board.reporter('DUKD')(10)
        board.reporter('output KD')(20)
        clock.now += 10
        board.reporter('DUKD')(50)
        board.reporter('output KD')(40, None)
        board.reporter('output KD')(None, '24.87')
        # DUKD 50 left at 4 it/s = 12.5 s, KD 60 at 2 it/s = 30 s, both running; scratch waits for the first free
        # slot (DUKD's) and needs 100 at their mean 3 it/s = 33.3 s: 12.5 + 33.3 = 45.8 s
        assert abs(board.remaining_seconds() - (12.5 + 100 / 3)) < 1e-6
        head, dukd, kd, scratch = board.lines()
        assert head.startswith('students (2 at a time): 3 runs, 30 % done, ETA 0:00:46 (at ')
        assert dukd.split() == ['DUKD', '50/100', 'it', '4.0', 'it/s', 'ETA', '0:00:12']
        assert kd.split()[-5:] == ['0:00:30', 'held-out', 'PSNR', '24.87', 'dB'] and '2.0 it/s' in kd
        assert scratch.split()[-2:] == ['it', 'waiting']
        board.finish('DUKD')
        assert board.lines()[1].split()[1:] == ['100/100', 'it', 'done']
        assert 'output KD' in out.getvalue() and out.getvalue().count('students (2 at a time)') >= 5
    finally:
        board.close()


def test_updates_are_throttled_but_the_board_is_never_silent_longer_than_the_interval():
    out = io.StringIO()
    board = ProgressBoard({'DUKD': 10}, interval=0.2, stream=out)
    try:
        board.start('DUKD')  # printed at once
        for it in range(1, 6):  # a burst of updates within the interval: no new block
            board.reporter('DUKD')(it)
        assert out.getvalue().count('students (1 at a time)') == 1
        time.sleep(0.75)  # nothing reports: the heartbeat prints
        assert out.getvalue().count('students (1 at a time)') >= 3
    finally:
        board.close()


def test_a_long_queue_lists_only_the_states_asked_for():
    clock, out = FakeClock(), io.StringIO()
    board = ProgressBoard({f'run{i}': 10 for i in range(6)}, jobs=2, title='study', interval=3600, stream=out,
                          clock=clock, listed=('running', 'failed'), queue_eta=False)
    try:
        board.start('run0')
        board.start('run1')
        board.finish('run0')
        board.finish('run1', ok=False)
        board.start('run2')
        head, *rest = board.lines()
        assert head == 'study (2 at a time): 1 of 6 runs done (not listed: 1 done, 3 waiting)'  # no queue ETA
        assert [line.split()[0] for line in rest] == ['run1', 'run2'] and rest[0].split()[-1] == 'failed'
    finally:
        board.close()
