"""The Optuna sweeper's parts without training: search-space syntax, settings, how a job's
ending becomes a trial state, and the pruning callback."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from neuralab.sweep import optuna_pruning, optuna_study
from neuralab.sweep.optuna_pruning import OptunaPruning, Pruned, current_trial, trials_in_process
from neuralab.sweep.optuna_space import SearchSpaceError, parse_space

PARSER = OverridesParser.create()
SETTINGS = {
    "sampler": {"name": "tpe", "seed": 0, "n_startup_trials": 10},
    "pruner": {"name": "median", "n_startup_trials": 5, "n_warmup_steps": 0},
    "direction": "minimize",
    "n_trials": 20,
    "n_jobs": 1,
    "storage": None,
    "study_name": "test",
}


def space(params: dict, *arguments: str, grid: bool = False):
    return parse_space(params, arguments, PARSER, grid)


@pytest.mark.parametrize(
    "value, distribution, grid",
    [
        ("interval(0.0, 0.5)", FloatDistribution(0.0, 0.5), None),
        ("tag(log, interval(1e-4, 1e-1))", FloatDistribution(1e-4, 1e-1, log=True), None),
        ("range(1, 4)", IntDistribution(1, 3), (1, 2, 3)),
        ("range(10, 0, -4)", IntDistribution(2, 10, step=4), (2, 6, 10)),
        ("tag(log, range(1, 9))", IntDistribution(1, 8, log=True), tuple(range(1, 9))),
        ("range(0, 1, 0.5)", CategoricalDistribution([0.0, 0.5]), (0.0, 0.5)),
        ("choice(1e-3, 1e-2)", CategoricalDistribution([1e-3, 1e-2]), (1e-3, 1e-2)),
        ("relu,tanh", CategoricalDistribution(["relu", "tanh"]), ("relu", "tanh")),
        # lists and mixed values are kept as the text of their override
        (
            "choice([64], [64,64])",
            CategoricalDistribution(["[64]", "[64,64]"]),
            ("[64]", "[64,64]"),
        ),
        ("null,2", CategoricalDistribution(["null", "2"]), ("null", "2")),
    ],
)
def test_each_sweep_syntax_is_one_distribution(value, distribution, grid):
    (param,) = space({"a.b": value}).params
    assert (param.name, param.distribution, param.grid) == ("a.b", distribution, grid)


def test_the_command_line_adds_replaces_and_fixes_entries():
    params = {"optimizer.lr": "interval(0.1, 1)", "model.dropout": "interval(0, 0.5)", "seed": 3}
    parsed = space(params, "optimizer.lr=choice(0.1,0.2)", "model.dropout=0.2", "+x.y=1,2")
    assert [p.key for p in parsed.params] == ["optimizer.lr", "+x.y"]
    assert parsed.params[0].distribution == CategoricalDistribution([0.1, 0.2])
    assert parsed.fixed == ["seed=3", "model.dropout=0.2"]
    values = {"optimizer.lr": 0.2, "x.y": "1"}
    assert parsed.overrides(values) == ["seed=3", "model.dropout=0.2", "optimizer.lr=0.2", "+x.y=1"]


def test_grid_points_are_the_product_first_parameter_slowest():
    parsed = space({"a": "1,2", "b": "x,y"}, grid=True)
    assert parsed.grid_points() == [
        {"a": 1, "b": "x"},
        {"a": 1, "b": "y"},
        {"a": 2, "b": "x"},
        {"a": 2, "b": "y"},
    ]


def test_every_bad_entry_is_one_error_naming_it():
    params = {"a": "interval(1)", "b": "tag(log, interval(0, 1))", "c": "tag(fast, choice(1,2))"}
    with pytest.raises(SearchSpaceError) as info:
        space(params, "d=choice(1,1)", "e=interval(0, 1)", grid=True)
    assert [(e.setting, e.value) for e in info.value.errors] == [
        ("hydra.sweeper.params.a", "interval(1)"),
        ("hydra.sweeper.params.b", "tag(log, interval(0, 1))"),
        ("hydra.sweeper.params.c", "tag(fast, choice(1,2))"),
        ("d", "choice(1,1)"),
        ("e", "interval(0, 1)"),
    ]
    assert "for grid search" in str(info.value.errors[-1])
    with pytest.raises(SearchSpaceError, match="at least one searched setting"):
        space({"seed": 1})


def test_settings_are_checked():
    bad = {**SETTINGS, "sampler": {**SETTINGS["sampler"], "name": "cmaes"}, "n_jobs": 0}
    bad["pruner"] = {**SETTINGS["pruner"], "name": "hyperband"}
    errors = optuna_study.check_settings(bad)
    assert [e.setting for e in errors] == [
        "hydra.sweeper.sampler.name",
        "hydra.sweeper.pruner.name",
        "hydra.sweeper.n_jobs",
    ]
    assert optuna_study.check_settings(SETTINGS) == []
    assert optuna_study.direction(None, "max") == "maximize"
    assert optuna_study.direction("minimize", "max") == "minimize"


@pytest.mark.parametrize(
    "status, value, state",
    [
        ("ok", 0.5, TrialState.COMPLETE),
        ("ok", float("nan"), TrialState.FAIL),
        ("ok", None, TrialState.FAIL),
        ("pruned", float("nan"), TrialState.PRUNED),
        ("diverged", float("nan"), TrialState.PRUNED),  # TPE learns the region is bad
        ("failed", float("nan"), TrialState.FAIL),  # an error says nothing about the params
    ],
)
def test_a_jobs_ending_becomes_a_trial_state(status, value, state):
    study = optuna_study.open_study(SETTINGS, "test")
    trial = study.ask({"x": FloatDistribution(0, 1)})
    frozen = optuna_study.tell(study, trial, status, value, {"job_dir": "0_x=0.5"})
    assert frozen.state == state
    assert frozen.user_attrs == {"job_dir": "0_x=0.5", "status": status}


class FakeTrial:
    def __init__(self, prune: bool):
        self.reports, self.prune = [], prune

    def report(self, value: float, step: int) -> None:
        self.reports.append((step, value))

    def should_prune(self) -> bool:
        return self.prune


def fake_trainer(**changes) -> SimpleNamespace:
    fields = {"world_size": 1, "sanity_checking": False, "current_epoch": 2}
    return SimpleNamespace(**{**fields, **changes}, callback_metrics={"val/loss": 0.25})


def test_the_pruning_callback_reports_each_epoch_and_stops_when_told(monkeypatch):
    trial = FakeTrial(prune=True)
    monkeypatch.setattr(optuna_pruning, "current_trial", lambda: trial)
    callback = OptunaPruning("val/loss")
    callback.setup(fake_trainer(sanity_checking=True), None, "fit")
    callback.on_validation_end(fake_trainer(sanity_checking=True), None)  # not an epoch
    with pytest.raises(Pruned, match="at epoch 2 \\(val/loss=0.25\\)"):
        callback.on_validation_end(fake_trainer(), None)
    assert trial.reports == [(2, 0.25)]


def test_pruning_is_off_outside_an_in_process_sweep():
    assert current_trial() is None
    with trials_in_process({0: FakeTrial(prune=True)}):
        assert current_trial() is None  # not inside a Hydra job: no job number
    callback = OptunaPruning("val/loss")
    callback.setup(fake_trainer(), None, "fit")
    callback.on_validation_end(fake_trainer(), None)  # no trial: nothing reported or raised
