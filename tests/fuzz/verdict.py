"""The three verdicts a generated bad input can get, and how one is told from the others.

(a) ``accepted``: the input was taken and the result is correct (a harmless mutation; ``reason`` says why);
(b) ``refused``: an error whose message names the offending key or file, before anything was run;
(c) ``defect``: a traceback from inside basicsr / torch / cv2 / numpy / yaml (or any error not naming the
    offending key or file), a hang, a success with a wrong result, or a changed or removed input.
"""
import os
import traceback
from dataclasses import dataclass

ACCEPTED, REFUSED, DEFECT = 'accepted', 'refused', 'defect'
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))


@dataclass
class Verdict:
    family: str
    input: str  # what was tried, enough to rebuild it by hand
    outcome: str
    reason: str


def raised_in_our_code(err: BaseException) -> bool:
    """True when the innermost frame that raised ``err`` is this project's (dukd_arch, wherever it is
    imported from, or this repository's scripts and entry points): an error we chose to raise, not one from
    inside a library, nor from the tests' own harness."""
    import dukd_arch
    ours = (os.path.dirname(os.path.abspath(dukd_arch.__file__)) + os.sep, os.path.join(REPO, 'scripts') + os.sep,
            os.path.join(REPO, 'train.py'), os.path.join(REPO, 'test.py'))
    frames = traceback.extract_tb(err.__traceback__)
    return bool(frames) and os.path.abspath(frames[-1].filename).startswith(ours)


def judge_error(family: str, what: str, err: BaseException, names) -> Verdict:
    """An exception raised for a bad input: refused when raised by our code and naming one of ``names``."""
    message = f'{type(err).__name__}: {err}'
    if not raised_in_our_code(err):
        where = traceback.extract_tb(err.__traceback__)[-1]
        return Verdict(family, what, DEFECT, f'raised inside {where.filename}:{where.lineno}: {message[:300]}')
    if not any(str(n) in str(err) for n in names):
        return Verdict(family, what, DEFECT, f'the message names none of {list(names)}: {message[:300]}')
    return Verdict(family, what, REFUSED, message.splitlines()[0][:200])
