"""A fork adds a net, a data set, an optimizer option and an experiment -- one .py and/or
one .yaml each, nothing else edited -- and the existing parametrized tests
(tests/test_configs.py) compose, build and train them. docs/EXTENDING.md "Make it yours" lists
exactly the files written here (keep the two in step)."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from repo_copy import copy_repo, env_with_src

from neuralab.data.sources import find_source
from neuralab.errors import ConfigError

NEW_FILES = {
    # a net: a plain nn.Module taking the shapes the config derives
    "src/neuralab/nets/tiny_net.py": """
        from torch import Tensor, nn

        from neuralab.layers import activation_class


        class TinyNet(nn.Module):
            def __init__(
                self, in_features: int, out_features: int, width: int = 16, activation: str = "relu"
            ):
                super().__init__()
                self.hidden = nn.Linear(in_features, width)
                self.act = activation_class(activation)()
                self.head = nn.Linear(width, out_features)

            def forward(self, x: Tensor) -> Tensor:  # (B, in) -> (B, out)
                return self.head(self.act(self.hidden(x)))
        """,
    "conf/model/tiny_net.yaml": """
        _target_: neuralab.nets.tiny_net.TinyNet
        in_features: ${data.num_features}
        out_features: ${loss.out_features}
        width: 16
        activation: relu
        """,
    # a data set: a function returning Arrays, named by its dotted path in data.source
    "src/neuralab/data/blobs.py": """
        from neuralab.data.sources import Arrays


        def blobs(seed: int, n_samples: int = 300, **_) -> Arrays:
            from sklearn.datasets import make_blobs

            x, y = make_blobs(n_samples, n_features=4, centers=3, random_state=seed)
            return Arrays(x, y)
        """,
    "conf/data/blobs.yaml": """
        defaults:
          - /_base/data@_here_
          - _self_

        source: neuralab.data.blobs.blobs
        task: classification
        num_features: 4
        num_classes: 3
        params:
          n_samples: 300
        """,
    # an optimizer option: any torch.optim class, as a partial
    "conf/optimizer/radam.yaml": """
        _target_: torch.optim.RAdam
        _partial_: true
        lr: 0.003
        weight_decay: 0.0
        """,
    # an experiment: a named set of choices and settings
    "conf/experiment/tiny_blobs.yaml": """
        # @package _global_
        defaults:
          - override /data: blobs
          - override /model: tiny_net
          - override /optimizer: radam

        task_name: tiny_blobs
        model:
          width: 32
        trainer:
          max_epochs: 30
        """,
}
NEW_OPTIONS = ("model=tiny_net", "data=blobs", "optimizer=radam", "experiment=tiny_blobs")


@pytest.fixture(scope="module")
def fork(tmp_path_factory) -> Path:
    root = copy_repo(tmp_path_factory.mktemp("fork"))
    for name, text in NEW_FILES.items():
        (root / name).write_text(textwrap.dedent(text).lstrip())
    return root


def _python(fork: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=fork,
        env=env_with_src(fork / "src"),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_copy_imports_its_own_package_and_configs(fork):
    code = "import neuralab, neuralab.runtime.config as c; print(neuralab.__file__, c.config_dir())"
    proc = _python(fork, "-c", code)
    assert proc.returncode == 0, proc.stderr
    package_file, conf = proc.stdout.split()
    assert Path(package_file) == fork / "src" / "neuralab" / "__init__.py"
    assert Path(conf) == fork / "conf"


def test_existing_parametrized_tests_compose_build_and_train_the_new_options(fork):
    proc = _python(
        fork,
        *("-m", "pytest", "tests/test_configs.py", "-v", "-p", "no:cacheprovider"),
        *("-k", "tiny_net or blobs or radam"),
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    results = re.findall(
        r"^tests/test_configs\.py::(\w+)\[(.*)\] (PASSED|FAILED|ERROR|SKIPPED)", out, re.M
    )
    assert results and all(status == "PASSED" for _, _, status in results), out[-5000:]
    passed = {(test, params) for test, params, _ in results}
    for option in NEW_OPTIONS:  # each new YAML is composed, instantiated, stepped
        assert ("test_option_composes_and_builds", option) in passed, sorted(passed)
    runs = [params for test, params in passed if test == "test_model_fast_dev_run"]
    assert any(p.startswith("model=tiny_net ") for p in runs), runs  # trained end to end
    assert any("optimizer=radam" in p for p in runs), runs
    assert ("test_loss_and_data_fast_dev_run", "data=blobs") in passed, sorted(passed)
    assert re.search(r"=+ \d+ passed", out) and not re.search(r"\d+ (failed|error)", out)


def test_a_data_source_is_a_name_or_a_dotted_path():
    assert find_source("digits").__name__ == "digits"
    assert find_source("neuralab.data.sources.moons").__name__ == "moons"
    for bad, hint in (
        ("nosuch", "or package.module.function"),
        ("neuralab.data.nosuch.load", "No module named 'neuralab.data.nosuch'"),
        ("neuralab.data.sources.nosuch", "has no attribute 'nosuch'"),
        ("neuralab.data.sources.SOURCES", "a function's dotted path"),
    ):
        with pytest.raises(ConfigError) as info:
            find_source(bad)
        assert info.value.setting == "data.source"
        assert hint in info.value.allowed
