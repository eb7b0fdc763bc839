"""Progress of several training runs at once, as plain lines: one per run and a total ETA.

    students (2 at a time): 3 runs, 26 % done, ETA 0:37:25 (at 09:04)
      DUKD                  3040/8000 it   5.6 it/s  ETA 0:14:46  held-out PSNR 24.87 dB
      output KD             3120/8000 it   5.8 it/s  ETA 0:14:01  held-out PSNR 24.91 dB
      student from scratch     0/8000 it  waiting

tqdm draws one bar per process; with runs in parallel threads the bars would fight over the terminal, so the
board prints its block whenever a run starts or ends and otherwise at most every ``interval`` seconds, and a
heartbeat thread prints it when nothing moved for ``interval`` seconds (never silent for longer). Rates are
measured from the iterations each run reports (BasicSR's ``print_freq`` lines), from its first report on, so
start-up time does not dilute them; a run that has not reported yet is costed at the mean rate of the others.
"""
import sys
import threading
import time
from datetime import datetime, timedelta
from typing import Callable, Dict, Optional, Sequence, TextIO


def _clock(seconds: float) -> str:
    return str(timedelta(seconds=int(round(seconds))))


class _Run:

    def __init__(self, total: int):
        self.total = total
        self.it = 0
        self.psnr: Optional[str] = None
        self.state = 'waiting'  # waiting / running / done / failed
        self.first: Optional[tuple] = None  # (time, iteration) of the first report
        self.last: Optional[tuple] = None

    def rate(self) -> Optional[float]:
        if self.first is None or self.last is None or self.last[0] <= self.first[0] or self.last[1] <= self.first[1]:
            return None
        return (self.last[1] - self.first[1]) / (self.last[0] - self.first[0])


class ProgressBoard:
    """``board = ProgressBoard({'DUKD': 8000, ...}, jobs=2)``; ``board.reporter('DUKD')(iteration, psnr)`` from
    the threads; ``board.start(label)`` / ``board.finish(label, ok)`` around each run; ``board.close()``."""

    def __init__(self, totals: Dict[str, int], jobs: int = 1, title: str = 'students', interval: float = 30.0,
                 stream: Optional[TextIO] = None, clock: Callable[[], float] = time.time,
                 listed: Sequence[str] = ('waiting', 'running', 'done', 'failed'), queue_eta: bool = True):
        self.runs = {label: _Run(total) for label, total in totals.items()}
        # sys.stdout looked up now, not at import: a redirected or captured stdout is the one written to
        self.jobs, self.title, self.interval, self.clock = max(1, jobs), title, interval, clock
        self.stream = stream if stream is not None else sys.stdout
        self.listed = tuple(listed)  # states that get a line; a long queue lists only its running runs
        # the total ETA costs waiting runs at the running ones' mean rate: off for a queue of unlike runs
        self.queue_eta = queue_eta
        self.width = max(len(label) for label in totals) if totals else 0
        self._lock = threading.Lock()
        self._printed = 0.0
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(target=self._beat, daemon=True)
        self._heartbeat.start()

    # ---- called by the runs
    def start(self, label: str) -> None:
        with self._lock:
            self.runs[label].state = 'running'
        self.print(force=True)

    def reporter(self, label: str) -> Callable[[Optional[int], Optional[str]], None]:
        def report(iteration: Optional[int] = None, psnr: Optional[str] = None) -> None:
            now = self.clock()
            with self._lock:
                run = self.runs[label]
                if iteration is not None:
                    run.it = min(iteration, run.total)
                    run.last = (now, run.it)
                    if run.first is None:
                        run.first = run.last
                if psnr is not None:
                    run.psnr = psnr
            self.print()
        return report

    def finish(self, label: str, ok: bool = True) -> None:
        with self._lock:
            run = self.runs[label]
            run.state = 'done' if ok else 'failed'
            if ok:
                run.it = run.total
        self.print(force=True)

    def close(self) -> None:
        self._stop.set()
        self._heartbeat.join(timeout=1)

    # ---- estimates and lines
    def remaining_seconds(self) -> Optional[float]:
        """Seconds until every run is done: each run's remaining iterations at its rate (a run without one yet at
        the mean of the others); running runs hold their slots, waiting ones queue onto the slot that frees first.
        None before any run has a rate."""
        rates = [r.rate() for r in self.runs.values() if r.rate()]
        if not rates:
            return None
        mean = sum(rates) / len(rates)

        def left(r):
            return (r.total - r.it) / (r.rate() or mean)
        slots = [left(r) for r in self.runs.values() if r.state == 'running']
        slots += [0.0] * max(0, self.jobs - len(slots))
        for r in self.runs.values():
            if r.state == 'waiting':
                slots[slots.index(min(slots))] += left(r)
        return max(slots)

    def lines(self) -> Sequence[str]:
        with self._lock:
            if self.queue_eta:
                done = sum(r.it for r in self.runs.values()) / max(1, sum(r.total for r in self.runs.values()))
                left = self.remaining_seconds()
                eta = 'ETA unknown until a run reports' if left is None else \
                    f'ETA {_clock(left)} (at {(datetime.now() + timedelta(seconds=left)):%H:%M})'
                out = [f'{self.title} ({self.jobs} at a time): {len(self.runs)} runs, {100 * done:.0f} % done, {eta}']
            else:
                finished = sum(r.state == 'done' for r in self.runs.values())
                out = [f'{self.title} ({self.jobs} at a time): {finished} of {len(self.runs)} runs done']
            unlisted = [r.state for r in self.runs.values() if r.state not in self.listed]
            if unlisted:
                counts = ', '.join(f'{unlisted.count(state)} {state}' for state in dict.fromkeys(unlisted))
                out[0] += f' (not listed: {counts})'
            for label, r in self.runs.items():
                if r.state not in self.listed:
                    continue
                line = f'  {label:<{self.width}}  {r.it:>6}/{r.total} it'
                rate = r.rate()
                if r.state == 'running':
                    line += f'  {rate:5.1f} it/s  ETA {_clock((r.total - r.it) / rate)}' if rate else '  starting'
                else:
                    line += f'  {r.state}'
                if r.psnr:
                    line += f'  held-out PSNR {r.psnr} dB'
                out.append(line)
            return out

    def print(self, force: bool = False) -> None:
        now = self.clock()
        if not force and now - self._printed < self.interval:
            return
        self._printed = now
        text = '\n'.join(self.lines())
        with self._lock:
            print(text, file=self.stream, flush=True)

    def _beat(self) -> None:
        while not self._stop.wait(min(self.interval, 60.0)):
            if self.clock() - self._printed >= self.interval:
                self.print(force=True)
