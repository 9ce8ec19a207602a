"""Bad data inputs stop with one line naming what to fix (exit code 2), and W&B loses nothing:
a batch larger than a worker's shard, more workers than samples, a corrupted gzip IDX file, LIBSVM
files with NaN / inf, a stray index 0 or a directory for a path; W&B's
own environment variables, a quick offline fallback, and a resumed run continuing its W&B run."""

from __future__ import annotations

import gzip
import re
import sys
import types
import zlib

import numpy as np
import pytest
from sklearn.datasets import dump_svmlight_file, load_breast_cancer
from test_cli import write_tiny_mnist

from cli_helpers import run_cli, summary
from compress_train.datasets.errors import DataFileError, DataSizeError
from compress_train.datasets.idx import read_idx, write_idx
from compress_train.datasets.libsvm import load_libsvm
from compress_train.datasets.partition import partition_indices
from compress_train.runner.loggers import wandb as wandb_sink

slow = pytest.mark.slow
SMALL_RUN = (
    "model.hidden=16",
    "train.batch_size=20",
    "train.log_every=1",
    "dataset.eval_samples=200",
)  # the MNIST CNN, narrow
CORRUPT_TAIL = ": the file is damaged or truncated; replace it (e.g. download it again)"


@pytest.fixture(scope="module")
def mnist_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mnist")
    write_tiny_mnist(root)  # 400 train / 100 test images
    return root


def one_error_line(proc) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    return line


# --- a batch larger than a shard, more workers than samples ------------------------------------


@slow
def test_batch_larger_than_a_shard_names_train_batch_size(tmp_path, mnist_root):
    proc = run_cli(f"dataset.root={mnist_root}", "workers=2", "train.batch_size=300", cwd=tmp_path)
    assert one_error_line(proc) == (
        "error: `train.batch_size` (300) is larger than worker 0's shard (200 samples): lower it or use fewer workers."
    )


@slow
def test_under_torchrun_a_refused_batch_is_the_same_one_line_and_leaves_no_run_dir(tmp_path, mnist_root):
    """The workers refuse the data as the simulator does: the CLI's last line is the simulator's error (the
    workers' ``rejected ...`` lines and torchrun's own report come above it) and no run directory is left."""
    run = tmp_path / "run"
    setup = (f"hydra.run.dir={run}", "launcher=torchrun", f"dataset.root={mnist_root}", "workers=2", "threads=1")
    proc = run_cli(*setup, "train.batch_size=300", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: `train.batch_size` (300) is larger than worker 0's shard (200 samples): lower it or use fewer workers."
    )
    assert not run.exists()


@slow
def test_more_workers_than_samples_names_workers(tmp_path, mnist_root):
    proc = run_cli(f"dataset.root={mnist_root}", "workers=401", "train.batch_size=1", cwd=tmp_path)
    assert one_error_line(proc) == (
        "error: `workers` (401) is more than the training samples (400): every worker "
        "needs a non-empty shard; use fewer workers."
    )


@slow
def test_convex_batch_larger_than_a_shard_names_train_batch_size(tmp_path):
    x, y = load_breast_cancer(return_X_y=True)
    path = tmp_path / "bc.svm"
    dump_svmlight_file(x[:50], y[:50], str(path), zero_based=False)  # one-based, as LIBSVM's format says
    proc = run_cli(
        "algo=sgd",
        "dataset=libsvm",
        f"dataset.path={path}",
        "model=logreg",
        "model.l2=0.01",
        "workers=2",
        "train.batch_size=40",
        cwd=tmp_path,
    )
    assert one_error_line(proc) == (
        "error: `train.batch_size` (40) is larger than worker 0's shard (25 samples): lower it or use fewer workers."
    )


def test_partition_size_errors_are_data_size_errors():
    with pytest.raises(DataSizeError, match=r"^`workers` \(5\) is more than the training samples \(4\)"):
        partition_indices(np.zeros(4, dtype=int), 5, "dirichlet", seed=0)
    with pytest.raises(DataSizeError, match=r"^`dataset.alpha` \(0.0001\) is too small for 15 workers"):
        partition_indices(np.zeros(20, dtype=int), 15, "dirichlet", seed=0, alpha=1e-4)
    assert issubclass(DataSizeError, DataFileError) and issubclass(DataSizeError, ValueError)


# --- a corrupted gzip IDX file -------------------------------------------------------------------


def flip_until_zlib_breaks(path) -> None:
    """XOR 0xFF into the first byte from the middle on that breaks the deflate stream itself (zlib.error,
    which used to escape read_idx as a traceback naming no file) rather than only the CRC."""
    raw = path.read_bytes()
    for pos in range(len(raw) // 2, len(raw) - 8):
        bad = bytearray(raw)
        bad[pos] ^= 0xFF
        try:
            zlib.decompress(bytes(bad), wbits=31)
        except zlib.error:
            path.write_bytes(bytes(bad))
            return
    pytest.fail(f"no single flipped byte breaks the deflate stream of {path}")


def compressible_images(n: int) -> np.ndarray:
    images = np.zeros((n, 28, 28), dtype=np.uint8)  # a dark frame around a noisy patch, as MNIST digits
    images[:, 8:20, 8:20] = np.random.default_rng(1).integers(0, 256, (n, 12, 12), dtype=np.uint8)
    return images


@slow
def test_corrupt_gzip_idx_file_is_named(tmp_path):
    root = tmp_path / "mnist"
    root.mkdir()
    write_tiny_mnist(root)
    bad = root / "t10k-images-idx3-ubyte.gz"
    write_idx(bad, compressible_images(100))
    flip_until_zlib_breaks(bad)
    line = one_error_line(run_cli(f"dataset.root={root}", cwd=tmp_path))
    assert re.fullmatch(rf"error: {re.escape(str(bad))}: corrupt gzip data \([^)]+\){re.escape(CORRUPT_TAIL)}", line)


@pytest.mark.parametrize("damage", ["deflate", "crc", "truncated", "header"])
def test_every_gzip_damage_is_a_data_file_error_naming_the_file(tmp_path, damage):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(path, compressible_images(50))
    raw = bytearray(path.read_bytes())
    if damage == "deflate":
        raw[10] |= 0b110  # the first deflate block's type: 11 is reserved (zlib.error)
    elif damage == "crc":
        raw[-8] ^= 0xFF  # the CRC-32 trailer (gzip.BadGzipFile)
    elif damage == "truncated":
        raw = raw[: len(raw) // 2]  # EOFError
    else:
        raw[3] = 0xFF  # every flag bit set, reserved ones included (gzip.BadGzipFile)
    path.write_bytes(bytes(raw))
    with pytest.raises(
        DataFileError, match=rf"^{re.escape(str(path))}: corrupt gzip data \(.+\){re.escape(CORRUPT_TAIL)}$"
    ):
        read_idx(path, ndim=3)


def test_a_damaged_header_cannot_overflow_the_size_check(tmp_path):
    path = tmp_path / "huge"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 3]) + b"\xff" * 8 + b"\0\0\0\1" + b"\0" * 16))
    with pytest.raises(
        DataFileError, match=r"truncated: header says 18446744065119617025 bytes of data, file holds 16$"
    ):
        read_idx(path)


# --- LIBSVM: non-finite values, index 0 in a one-based file, a directory ------------------------


@pytest.mark.parametrize(
    "line, what",
    [
        ("+1 1:0.5 2:nan", "value '2:nan' is not a finite number"),
        ("-1 1:inf", "value '1:inf' is not a finite number"),
        ("nan 1:0.5", "label 'nan' is not a finite number"),
    ],
)
@pytest.mark.parametrize("suffix", [".svm", ".svm.gz"])
def test_libsvm_non_finite_values_name_the_file_and_line(tmp_path, line, what, suffix):
    path = tmp_path / f"bad{suffix}"
    text = f"+1 1:0.1 2:0.2\n# a comment line\n-1 2:0.3\n{line}\n"
    path.write_bytes(gzip.compress(text.encode()) if suffix.endswith(".gz") else text.encode())
    with pytest.raises(DataFileError) as err:
        load_libsvm(str(path))
    assert str(err.value) == f"LIBSVM file '{path}', line 4: {what}"


def test_libsvm_index_zero_is_rejected_in_a_one_based_file_and_read_when_zero_based(tmp_path):
    path = tmp_path / "mixed.svm"
    path.write_text("+1 1:0.1 3:0.2\n-1 2:0.3\n+1 0:0.7 1:0.1\n-1 3:0.4\n")
    with pytest.raises(
        DataFileError,
        match=r"mixed\.svm', line 3: feature index 0 in '0:0\.7', but the file is "
        r"read as one-based .*dataset\.zero_based=true",
    ):
        load_libsvm(str(path))
    x, _, _, desc, _ = load_libsvm(str(path), zero_based=True)
    assert x.shape == (4, 4) and x[2, 0] == 0.7 and x[0, 1] == 0.1 and "zero-based" in desc
    one_based = tmp_path / "one.svm"
    one_based.write_text("+1 1:0.1 3:0.2\n-1 2:0.3\n")
    x1, _, _, desc1, _ = load_libsvm(str(one_based))
    assert x1.shape == (2, 3) and x1[0, 0] == 0.1 and "one-based" in desc1  # no extra column


@pytest.mark.parametrize(
    "line, what",
    [
        ("hello 1:0.5", "label 'hello' is not a number"),
        ("+1 1:0.5 junk", "'junk' is not an index:value pair with an integer index"),
        ("+1 x:0.5", "'x:0.5' is not an index:value pair with an integer index"),
        ("+1 1:abc", "value '1:abc' is not a number"),
        ("+1 3:0.5 2:0.1", "feature index 2 in '2:0.1' follows index 3: indices must increase along a line"),
        ("+1 2:0.5 2:0.1", "feature index 2 in '2:0.1' follows index 2: indices must increase along a line"),
    ],
)
def test_libsvm_garbage_and_unsorted_lines_name_the_line(tmp_path, line, what):
    path = tmp_path / "bad.svm"
    path.write_text(f"+1 1:0.1 2:0.2\n-1 2:0.3\n{line}\n-1 1:0.4\n")
    with pytest.raises(DataFileError) as err:
        load_libsvm(str(path))
    assert str(err.value) == f"LIBSVM file '{path}', line 3: {what}"


@pytest.mark.parametrize("text", ["", "# only a comment\n\n"])
def test_libsvm_empty_file_says_it_holds_no_samples(tmp_path, text):
    path = tmp_path / "empty.svm"
    path.write_text(text)
    with pytest.raises(DataFileError) as err:
        load_libsvm(str(path))
    assert str(err.value) == f"LIBSVM file '{path}' holds no samples: it is empty or holds only comments"


def test_libsvm_path_that_is_a_directory_says_so(tmp_path):
    with pytest.raises(DataFileError, match=r"is a directory, not a file"):
        load_libsvm(str(tmp_path))
    with pytest.raises(DataFileError, match=r"does not exist"):
        load_libsvm(str(tmp_path / "nowhere.svm"))


def libsvm_cli(tmp_path, path):
    return run_cli("algo=gd", "dataset=libsvm", f"dataset.path={path}", "model=logreg", "model.l2=0.01", cwd=tmp_path)


@slow
def test_libsvm_directory_path_is_a_config_error_saying_directory(tmp_path):
    proc = libsvm_cli(tmp_path, tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"`dataset.path` must be a LIBSVM file, but '{tmp_path}' is a directory." in proc.stderr


@slow
def test_libsvm_nan_stops_the_cli_with_one_line_naming_file_and_line(tmp_path):
    path = tmp_path / "nan.svm"
    path.write_text("+1 1:0.5\n-1 1:nan\n")
    assert one_error_line(libsvm_cli(tmp_path, path)) == (
        f"error: LIBSVM file '{path}', line 2: value '1:nan' is not a finite number"
    )


# --- W&B: its environment variables, a quick offline fallback, the run id ---------------------


class FakeWandb(types.ModuleType):
    """``wandb`` as the sink sees it: records every init; an online init fails (no network)."""

    def __init__(self, run_dir):
        super().__init__("wandb")
        self.inits, self.run_dir = [], run_dir

    @staticmethod
    def Settings(**kw):  # noqa: N802 - wandb's name
        return kw

    def init(self, **kw):
        self.inits.append(kw)
        if kw["mode"] == "online":
            raise RuntimeError("Timed out while retrying\nConsider increasing the init_timeout setting")
        run_id = kw.get("id") or "fresh123"
        return types.SimpleNamespace(id=run_id, dir=str(self.run_dir / "wandb" / f"offline-run-x-{run_id}" / "files"))


@pytest.fixture
def fake_wandb(monkeypatch, tmp_path):
    for var in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_INIT_TIMEOUT", *wandb_sink.ENV_WINS.values()):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("TORCHELASTIC_RESTART_COUNT", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc login
    fake = FakeWandb(tmp_path)
    monkeypatch.setitem(sys.modules, "wandb", fake)
    return fake


def test_online_start_gives_up_quickly_then_logs_offline(make_config, fake_wandb, monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    sink = wandb_sink.WandbSink(make_config("logger=wandb"), tmp_path)  # logger.init_timeout_s: 30
    online, offline = fake_wandb.inits
    assert online["mode"] == "online" and online["settings"]["init_timeout"] == wandb_sink.ONLINE_TRY_S == 10
    assert offline["mode"] == "offline" and sink.run is not None
    assert (tmp_path / wandb_sink.ID_FILE).read_text() == "fresh123\n"


def test_wandb_environment_variables_win_over_the_logger_keys(make_config, fake_wandb, monkeypatch, tmp_path):
    for var, value in (
        ("WANDB_MODE", "offline"),
        ("WANDB_PROJECT", "mine"),
        ("WANDB_DIR", str(tmp_path / "w")),
        ("WANDB_INIT_TIMEOUT", "3"),
    ):
        monkeypatch.setenv(var, value)
    wandb_sink.WandbSink(make_config("logger=wandb", "logger.mode=online"), tmp_path)
    (init,) = fake_wandb.inits
    assert init["mode"] == "offline" and "project" not in init and "dir" not in init
    assert "init_timeout" not in init["settings"] and init["entity"] is None


def test_wandb_mode_disabled_starts_no_wandb(make_config, fake_wandb, monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    sink = wandb_sink.WandbSink(make_config("logger=wandb"), tmp_path)
    assert fake_wandb.inits == [] and sink.run is None and not (tmp_path / wandb_sink.ID_FILE).exists()


def test_a_resumed_run_continues_its_wandb_run(make_config, fake_wandb, tmp_path):
    (tmp_path / "old" / "checkpoints" / "step_000000002").mkdir(parents=True)
    (tmp_path / "old" / wandb_sink.ID_FILE).write_text("abc12345\n")
    new = tmp_path / "new"
    new.mkdir()
    wandb_sink.WandbSink(
        make_config("logger=wandb", f"resume={tmp_path / 'old' / 'checkpoints' / 'step_000000002'}"), new
    )
    (init,) = fake_wandb.inits
    assert (init["id"], init["resume"]) == ("abc12345", "allow")
    assert (new / wandb_sink.ID_FILE).read_text() == "abc12345\n"


@slow
def test_wandb_mode_disabled_creates_no_wandb_folder(tmp_path, monkeypatch, mnist_root):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("WANDB_MODE", "disabled")
    run = tmp_path / "run"
    proc = run_cli(
        f"hydra.run.dir={run}",
        "logger=wandb",
        f"dataset.root={mnist_root}",
        *SMALL_RUN,
        "train.max_steps=2",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert summary(run)["status"] == "completed" and "W&B: disabled by WANDB_MODE" in proc.stdout + proc.stderr
    assert not (run / "wandb").exists() and not (run / wandb_sink.ID_FILE).exists()


@slow
def test_resumed_run_reuses_the_wandb_run_id(tmp_path, monkeypatch, mnist_root):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no login: offline, the real wandb library
    run = tmp_path / "run"
    common = (f"hydra.run.dir={run}", "logger=wandb", f"dataset.root={mnist_root}", *SMALL_RUN)
    first = run_cli(*common, "train.max_steps=2", cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    run_id = (run / wandb_sink.ID_FILE).read_text().strip()
    second = run_cli(*common, "train.max_steps=4", "resume=auto", cwd=tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert summary(run)["resumed"]["count"] == 1 and (run / wandb_sink.ID_FILE).read_text().strip() == run_id
    runs = sorted((run / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and all(r.name.endswith(f"-{run_id}") for r in runs)
    assert all(list(r.glob("run-*.wandb")) for r in runs)
