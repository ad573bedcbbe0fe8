def test_scratch(experiment_yaml, harness_cli, tmp_path):
    cfg = experiment_yaml()
    r = harness_cli("run", "--config", cfg, "--results", tmp_path / "results")
    print(r.stdout); print(r.stderr[-5000:]); print(r.seconds)
    r = harness_cli("run", "--config", cfg, "--results", tmp_path / "results")
    print(r.stdout); print(r.stderr[-3000:]); print(r.seconds)
    r = harness_cli("show", "base-smoke", "--json", "--results", tmp_path / "results")
    print(r.stdout)
    assert 0
