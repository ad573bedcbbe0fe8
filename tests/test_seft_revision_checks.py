"""SEFT's revision measurements: reward summaries per decision and the judged sample (pure parts)."""

from __future__ import annotations

from harness.seft.revision_checks import judged_sample, reward_summary


def row(decision: str, original: str, target: str, prompt_id: str = "p") -> dict:
    return {"prompt_id": prompt_id, "source": "internal", "decision": decision,
            "prompt": [{"role": "user", "content": "q"}], "original": original, "target": target}


def test_reward_summary_means_overall_and_per_decision() -> None:
    rows = [row("keep", "a", "a"), row("major", "b", "B"), row("major", "c", "C"), row("minor", "d", "D")]
    summary = reward_summary(rows, before=[1.0, -1.0, -3.0, 0.0], after=[1.0, 1.0, 1.0, 0.5])
    assert summary["reward_n"] == 4
    assert summary["reward_before"] == -0.75 and summary["reward_after"] == 0.875
    assert summary["reward_by_decision"]["major"] == {"n": 2, "before": -2.0, "after": 1.0}
    assert summary["reward_by_decision"]["keep"] == {"n": 1, "before": 1.0, "after": 1.0}
    assert reward_summary([], [], [])["reward_before"] is None


def test_judged_sample_takes_only_real_revisions_in_a_seeded_order() -> None:
    rows = [row("keep", "a", "a", "k"), row("unparseable", "b", "b", "u"), row("major", "same", " same ", "s")]
    rows += [row("minor" if i % 2 else "major", f"o{i}", f"t{i}", f"p{i}") for i in range(10)]
    first = judged_sample(rows, 4, seed=0)
    assert len(first) == 4 and all(r["decision"] in ("minor", "major") and r["target"] != r["original"] for r in first)
    assert first == judged_sample(list(reversed(rows)), 4, seed=0)  # order of the round does not matter
    assert first != judged_sample(rows, 4, seed=1)
    assert len(judged_sample(rows, 50, seed=0)) == 10
