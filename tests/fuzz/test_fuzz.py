"""The CI sample of the fuzzer (tests/fuzz/run_fuzz.py): 212 seeded bad inputs over the four families, 0 defects."""
import collections

from run_fuzz import SAMPLE, run, table
from verdict import ACCEPTED, DEFECT, REFUSED


def test_a_seeded_sample_of_bad_inputs_gives_a_clear_error_or_a_correct_run(tmp_path):
    verdicts = run(seed=0, scale=1, work=str(tmp_path))
    assert len(verdicts) == sum(SAMPLE.values()) >= 200
    defects = [f'{v.input}: {v.reason}' for v in verdicts if v.outcome == DEFECT]
    assert not defects, '\n'.join(defects) + '\n' + table(verdicts)
    per_family = collections.defaultdict(collections.Counter)
    for v in verdicts:
        per_family[v.family][v.outcome] += 1
    assert set(per_family) == {'options', 'images', 'datasets', 'checkpoints'}
    assert all(c[REFUSED] > 0 for c in per_family.values())  # every family is exercised, not waved through
    assert all(v.reason for v in verdicts if v.outcome == ACCEPTED)  # each harmless input says why
