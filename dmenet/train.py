"""Train DMENet: ``python -m dmenet.train --config experiments/tiny.yaml --stage joint --synthetic DIR --real DIR
--labelled DIR --gt-polarity white-blurred --out RUN --steps N [--resume] [--wandb disabled] [--set key=value ...]
[--device cpu|cuda] [--init-from MODEL]``.

Multi-process data parallel: ``torchrun --nproc_per_node K -m dmenet.train ...`` (gloo on CPU, NCCL on CUDA); each
rank draws its own batches, gradients are averaged by DistributedDataParallel, rank 0 writes the run folder.

Run folder: ``config.yaml`` (resolved), ``data.json`` (the input folders' file names and sizes when the run started,
``dmenet.training.data_record``), ``metrics.jsonl``, ``checkpoints/{step_*/,last.json,best.json}``,
``model_last.safetensors`` + ``.json`` (loadable by ``dmenet.models.model_io.load_model_file``), ``replicas.json``.
Every checkpoint and model sidecar records the run's ``run_id`` (drawn when a run starts, kept by ``--resume``; a
run ``--init-from`` a model file is a new run that records that file's as ``parent_run_id``;
``dmenet.training.checkpoint.new_run``).

Refused before anything is written (exit 2, one line): a new run whose ``--out`` is not missing or empty, is / lies
inside / holds an input folder (--synthetic, --real, --labelled) or holds the --config or --init-from file; a
``--resume`` whose config differs from the run's (``config.yaml`` and the checkpoint's record) in anything but
``train.steps`` (never below the checkpoint's step), ``train.device``, ``train.wandb`` and ``--threads``, or by
another number of data-parallel processes than wrote its checkpoint (the global batch would change), or whose input
folders hold other files (names or sizes) than ``data.json`` records (images replaced under the same names); a run
into an ``--out`` that another run (or ``--resume``) is writing now (``syndof.io.folder_lock``, held by the writing
process for the whole run).

Precedence: YAML (the run's config.yaml on ``--resume``) → ``--set`` → explicit flags (--stage, --steps, --wandb,
--device, --synthetic, --real, --labelled, --gt-polarity, --init-from). A ``--set`` of a key that a flag also sets is
overridden (a warning names both), but its value must still be valid (exit 2 otherwise).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.distributed as dist
from tqdm import tqdm

from dmenet.config import (ADDED_KEYS, ExperimentConfig, GtPolarity, Stage, config_from_dict, dump_config, load_config,
                           wants_cuda)
from dmenet.configlib import ConfigError, config_to_dict, differing_keys, flat_keys, split_override
from dmenet.data import DomainStream, LabelledDataset, RealDataset, SyntheticDataset
from dmenet.data.real import real_photo_entries
from dmenet.data.stream import derived_seed
from dmenet.data.transforms import augment, to_tensors
from dmenet.models.dmenet import build_dmenet
from dmenet.models.model_io import RESERVED_KEYS, load_weights_from, save_model
from dmenet.training import checkpoint, stopped
from dmenet.training.data_record import check_data_record, folder_fingerprint, write_data_record
from dmenet.training.engine import NonFiniteLossError, StepBatches, Trainer
from dmenet.training.logging import RunLogger, to_uint8_panel, truncate_metrics
from dmenet.training.resume import resume_free_keys, steps_problem
from dmenet import cli as dcli
from syndof import cli, io
from syndof.choices import choices, parse_choice
from syndof.io import write_json_atomic, write_text_atomic

log = logging.getLogger("dmenet.train")
REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------------------------------------- setup
EXAMPLE = ("dmenet-train --config experiments/tiny.yaml --stage blur --synthetic runs/generate_example "
           "--out runs/train_example --steps 2 --wandb disabled --set train.ckpt_every=2 data.crop=64")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``python -m dmenet.train``'s arguments (the module docstring is its --help text)."""
    p = cli.parser("dmenet.train", __doc__, EXAMPLE)
    cli.add_config(p, help="experiment YAML (experiments/*.yaml); defaults = the paper's values")
    p.add_argument("--stage", choices=choices(Stage), help="blur: B alone on synthetic data; joint: B, D, S")
    p.add_argument("--synthetic", help="SYNDOF folder (image/, blur_map/, dataset.json)")
    p.add_argument("--real", help="unlabelled real photos (searched recursively)")
    p.add_argument("--labelled", help="labelled real folder (image/, gt/)")
    p.add_argument("--gt-polarity", choices=choices(GtPolarity), help="polarity of the gt/ masks")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--steps", type=int, help="total iterations (train.steps)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--init-from", metavar="PATH",
                   help="start a new run from this model file's weights (train.init_from)")
    dcli.add_wandb(p, default=None, help="W&B mode (default offline)")
    cli.add_device(p, default=None, auto=True)
    cli.add_threads(p)
    cli.add_set(p, help="config overrides, e.g. --set train.batch_synthetic=8 optim.lr=5e-5; an explicit flag "
                "wins over a --set of the key it sets (" + ", ".join(f"{o} = {k}" for k, o in FLAG_KEYS.items())
                + "): that --set value must still be valid (else exit 2) and a warning names both")
    return p.parse_args(argv)


FLAG_KEYS = {"data.synthetic": "--synthetic", "data.real": "--real", "data.labelled": "--labelled",
             "data.gt_polarity": "--gt-polarity", "train.stage": "--stage", "train.steps": "--steps",
             "train.wandb": "--wandb", "train.device": "--device", "train.init_from": "--init-from"}
"""Config keys an explicit flag sets (key → flag); a flag wins over a ``--set`` of its key."""


def flag_values(args: argparse.Namespace) -> dict[str, Any]:
    """``{config key: value}`` of the :data:`FLAG_KEYS` flags given in ``args`` (a flag left out is None there and
    is not in the result). The attribute of a flag is argparse's default ``dest``: ``--gt-polarity`` → gt_polarity."""
    values = {key: getattr(args, option.lstrip("-").replace("-", "_")) for key, option in FLAG_KEYS.items()}
    return {key: value for key, value in values.items() if value is not None}


def _set_value(item: str) -> Any:
    """The value the ``--set`` item ``item`` gives its key, as the config holds it (parsed as YAML, converted and
    checked against the defaults: ``train.steps=1_000`` → 1000). ConfigError when it is not a valid value."""
    return flat_keys(config_to_dict(load_config(None, [item])))[split_override(item)[0]]


def _check_overridden_sets(overrides: Sequence[str], flags: dict[str, Any]) -> None:
    """A ``--set KEY=VALUE`` whose KEY an explicit flag also sets (``flags``: :func:`flag_values`): its VALUE is
    checked on its own (ConfigError naming the --set item, the key and the flag; ``--stage blur --set
    train.stage=foo`` used to pass silently) and, when it differs from the flag's, a warning says that the flag's
    value is the one used."""
    for item in overrides:
        key = split_override(item)[0] if "=" in item else None  # a bad item is load_config's to refuse
        if key not in flags:
            continue
        option = FLAG_KEYS[key]
        try:
            value = _set_value(item)  # the value on its own, against the defaults
        except ConfigError as exc:
            raise ConfigError(f"--set {item}: {exc} ({option} sets {key} too: give it once)") from None
        try:
            same = value == _set_value(f"{key}={flags[key]}")
        except ConfigError:  # the flag's own value is bad: the config load that follows says so
            same = False
        if not same:
            log.warning("--set %s is overridden by %s %s (an explicit flag wins over --set)", item, option,
                        flags[key])


def resolve_config(args: argparse.Namespace) -> ExperimentConfig:
    """YAML (or the run's saved config on --resume) → --set overrides → explicit flags (a --set of a key that a flag
    also sets must still be a valid value: :func:`_check_overridden_sets`)."""
    overrides = list(args.overrides)
    given = flag_values(args)
    _check_overridden_sets(overrides, given)
    overrides += [f"{k}={v}" for k, v in given.items()]
    path = args.config
    saved = Path(args.out) / "config.yaml"
    if args.resume:
        if not saved.is_file():
            raise ConfigError(f"--resume: {saved} not found (is --out the folder of an earlier run?)")
        if args.config:
            log.info("--resume: using %s; --config %s is ignored", saved, args.config)
        path = saved
    cfg = load_config(path, overrides, added=ADDED_KEYS if args.resume else None)
    if not args.resume:  # a resume reads the run's own record (absolute since this rule; older runs as they were)
        cfg = absolute_data_paths(cfg)
    init = cfg.model.init
    if init and not Path(init).is_absolute() and not Path(init).exists() and (REPO / init).exists():
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, init=str((REPO / init).resolve())))
    return cfg


def absolute_data_paths(cfg: ExperimentConfig) -> ExperimentConfig:
    """``cfg`` with the data folders and ``train.init_from`` as absolute paths (not resolving links), as config.yaml
    and the checkpoints record them: a relative ``--synthetic data/syn`` recorded as given made a ``--resume`` from
    another working folder train on whatever ``data/syn`` lies there."""
    data = {key: os.path.abspath(value) for key, _ in INPUT_FOLDERS if (value := getattr(cfg.data, key))}
    train = {"init_from": os.path.abspath(cfg.train.init_from)} if cfg.train.init_from else {}
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, **data),
                               train=dataclasses.replace(cfg.train, **train))


def setup_device(cfg: ExperimentConfig) -> tuple[torch.device, int, int]:
    """(device, rank, world size); initialises torch.distributed when launched by torchrun."""
    use_cuda = wants_cuda(cfg.train.device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(local)
        return torch.device("cuda", local), rank, world
    return torch.device("cpu"), rank, world


def refuse_earlier_run(run_dir: Path) -> None:
    """A new run must not overwrite another run's checkpoints, model or logs (ConfigError naming the folder)."""
    def holds(path: Path) -> bool:
        """True when ``path`` is a non-empty folder or a non-empty file."""
        return any(path.iterdir()) if path.is_dir() else path.is_file() and path.stat().st_size > 0

    found = [name for name in ("checkpoints", "model_last.safetensors", "metrics.jsonl") if holds(run_dir / name)]
    left = sorted(run_dir.iterdir()) if run_dir.is_dir() and found in ([], ["metrics.jsonl"]) else []
    if "metrics.jsonl" in {p.name for p in left} and {p.name for p in left} <= set(RUN_FILES):
        # a run that stopped before its first checkpoint (killed, a non-finite loss at step 0): nothing to resume,
        # and every one of its files blocks a new run, so the message names them all
        raise ConfigError(f"{run_dir}: holds the files of an earlier run that saved no checkpoint (nothing to "
                          f"--resume); delete {', '.join(str(p) for p in left)} or train into another --out folder "
                          "(nothing was changed)")
    if found == ["metrics.jsonl"]:  # a run stopped before its first checkpoint: nothing to resume
        raise ConfigError(f"{run_dir}: holds the log of an earlier run that saved no checkpoint; delete "
                          f"{run_dir / 'metrics.jsonl'} or train into another --out folder (nothing was changed)")
    if found:
        raise ConfigError(f"{run_dir}: holds an earlier run ({', '.join(found)}); continue it with --resume, or "
                          "train into another --out folder (nothing was changed)")


RUN_FILES = ("config.yaml", "data.json", "metrics.jsonl", "replicas.json", "wandb_id.txt", "wandb")
"""What a run writes into its folder before (or besides) its first checkpoint."""


INPUT_FOLDERS = (("synthetic", "--synthetic"), ("real", "--real"), ("labelled", "--labelled"))
"""data.* folders a run reads (with the option that sets each): never the run folder, inside it, or around it."""


def _same_or_inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies inside it (both resolved: symlinks and ``..`` followed)."""
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def check_new_run_folder(cfg: ExperimentConfig, run_dir: Path, config_file: str | Path | None = None) -> None:
    """Refuse (ConfigError, one line naming the option, before anything is read or written) an ``--out`` for a new
    run that is not a folder of its own: a path that is not a folder; the --synthetic / --real / --labelled folder,
    a folder inside one or one holding one (the run would be mixed into a data set, or a data set into the run); a
    folder holding the --config file or the --init-from / model.init model file (config.yaml would overwrite the
    one, the run would be mixed into the other's); an earlier run of this trainer (:func:`refuse_earlier_run`:
    continue it with --resume); any other non-empty folder."""
    run_dir = Path(run_dir)
    if run_dir.is_symlink() and not run_dir.is_dir() or run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--out {run_dir}: exists and is not a folder (nothing was changed)")
    for key, option in INPUT_FOLDERS:
        value = getattr(cfg.data, key)
        if not value:
            continue
        folder = Path(value)
        if _same_or_inside(run_dir, folder) or _same_or_inside(folder, run_dir):
            raise ConfigError(f"--out {run_dir}: is, is inside or holds the {option} folder {folder} (data.{key}); "
                              "a run writes into a folder of its own (choose another --out; nothing was changed)")
    inputs = [("--config", config_file), ("--init-from", cfg.train.init_from), ("model.init", cfg.model.init)]
    for option, value in inputs:
        if value and _same_or_inside(Path(value), run_dir) and _names_a_file(Path(value)):
            raise ConfigError(f"--out {run_dir}: holds the {option} file {value}, which the run would overwrite or "
                              "mix its files with (choose another --out; nothing was changed)")
    refuse_earlier_run(run_dir)
    held = sorted(p.name for p in run_dir.iterdir()) if run_dir.is_dir() else []
    if held:
        shown = ", ".join(held[:4]) + (", …" if len(held) > 4 else "")
        raise ConfigError(f"--out {run_dir}: exists and is not empty ({shown}) and holds no run of dmenet.train to "
                          "--resume; a new run writes into a folder of its own (choose another --out; nothing was "
                          "changed)")


def _names_a_file(path: Path) -> bool:
    """A file, or a model file given without its suffix (``RUN/model_last`` → ``model_last.safetensors``)."""
    return path.is_file() or path.with_name(path.name + ".safetensors").is_file() or \
        path.with_name(path.name + ".json").is_file()


RUNTIME = ("device", "wandb")
"""train.* keys a resume may change: where it runs and logs, not what it trains (as dmenet.distill.train and
dmenet.galetto.train; --threads is no config key). train.steps may change too, never below the checkpoint's step."""
PATH_KEYS = ("data.synthetic", "data.real", "data.labelled", "model.init", "train.init_from")


def _same_value(key: str, a: Any, b: Any) -> bool:
    if a == b:
        return True
    if key in PATH_KEYS and isinstance(a, str) and isinstance(b, str):  # the same folder spelt another way
        return Path(a).resolve() == Path(b).resolve()
    return False


def check_resume(cfg: ExperimentConfig, run_dir: Path) -> Path:
    """Refuse (ConfigError / CheckpointError, one line, before anything is written) a ``--resume`` that would mislabel
    the run: a config that differs from the run's ``config.yaml`` or from the record in its last checkpoint's
    ``train.json`` in anything but the RUNTIME keys and ``train.steps``, a ``train.steps`` below the checkpoint's
    step, another number of data-parallel processes, or input folders whose files differ from those recorded in the
    run's ``data.json`` (:func:`data_fingerprints`; a run from before that record resumes unchecked). Returns the
    checkpoint folder to resume from."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"--resume: --out {run_dir} is not a run folder (nothing was changed)")
    config_file = run_dir / "config.yaml"
    folder = checkpoint.resolve(run_dir)
    meta = checkpoint.read_meta(folder)
    done = meta.get("step")
    if not isinstance(done, int) or isinstance(done, bool) or done < 0:
        raise checkpoint.CheckpointError(f"{folder / 'train.json'}: 'step' must be a non-negative integer, "
                                         f"got {done!r}")
    if folder.name != checkpoint.folder_name(done):  # the weights and moments of one step would go on as another's
        raise checkpoint.CheckpointError(f"{folder / 'train.json'}: step {done} is not its folder's step "
                                         f"({folder.name}); a damaged checkpoint (nothing was changed)")
    try:  # read at the first checkpoint: a damaged one failed there, after the steps before it, at every resume
        checkpoint.best_pointer(run_dir)
    except checkpoint.CheckpointError as exc:
        raise checkpoint.CheckpointError(f"{exc}; delete it to let the resumed run choose its best checkpoint anew "
                                         "(nothing was changed)") from None
    records = [(str(config_file), config_to_dict(load_config(config_file, added=ADDED_KEYS)))]
    if meta.get("config"):
        try:
            records.append((str(folder / "train.json"),
                            config_to_dict(config_from_dict(meta["config"], added=ADDED_KEYS))))
        except (ValueError, TypeError, AttributeError) as exc:
            raise checkpoint.CheckpointError(f"{folder / 'train.json'}: its config record does not read as a "
                                             f"config ({cli.error_line(exc)})") from None
    now = flat_keys(config_to_dict(cfg))
    free = resume_free_keys(RUNTIME)
    for source, record in records:
        differ = differing_keys(flat_keys(record), now, free, _same_value)
        if differ:
            raise ConfigError(f"--resume: the config differs from the run's ({source}) in {', '.join(differ)}; "
                              f"{folder / 'model.safetensors'} (step {done}) was trained with the run's config: "
                              f"resume with it (only train.steps, {', '.join(sorted(free - {'train.steps'}))} and "
                              "--threads may change), or train into another --out folder (nothing was changed)")
    problem = steps_problem(cfg.train.steps, done, folder, "--steps")
    if problem is not None:
        raise ConfigError(problem)
    saved, world = checkpoint_world_size(meta), int(os.environ.get("WORLD_SIZE", "1"))
    if saved is not None and saved != world:  # the global batch and each rank's data stream would change mid-run
        raise ConfigError(f"--resume: {folder} was written by a run of {saved} data-parallel process(es), this one "
                          f"has {world}; resume with the same number (torchrun --nproc_per_node {saved}, or without "
                          "torchrun for 1), or train into another --out folder (nothing was changed)")
    check_data_record(run_dir, data_fingerprints(cfg))
    return folder


def data_fingerprints(cfg: ExperimentConfig) -> dict[str, dict[str, Any]]:
    """The input folders the run's stage reads (``--synthetic``; ``--real`` and ``--labelled`` too for the joint
    stage), each as its :func:`dmenet.training.data_record.folder_fingerprint` (every file's name and size), by the
    option that sets it: what ``RUN/data.json`` records when a run starts and a ``--resume`` compares."""
    joint = parse_choice(Stage, cfg.train.stage, "train.stage") is Stage.JOINT
    read = {"synthetic", "real", "labelled"} if joint else {"synthetic"}
    return {option: folder_fingerprint(getattr(cfg.data, key)) for key, option in INPUT_FOLDERS
            if key in read and getattr(cfg.data, key)}


def checkpoint_world_size(meta: dict[str, Any]) -> int | None:
    """The number of processes that wrote a checkpoint, from its train.json ``meta``: one data-stream state per rank
    (``name@rank``); None when the streams carry no rank (an older checkpoint)."""
    streams = meta.get("streams")
    ranks = {key.rpartition("@")[2] for key in streams if "@" in key} if isinstance(streams, dict) else set()
    if not ranks or not all(r.isdigit() for r in ranks):
        return None
    return max(int(r) for r in ranks) + 1


def _stream_seed(seed: int, domain: int, rank: int) -> int:
    return derived_seed(seed, domain * 10_007 + rank * 101)


def _check_no_test_photos(option: str, folder: str, photos: list[Path]) -> None:
    """Refuse (ConfigError naming ``option`` and the first photo) training photos ``photos`` of ``folder`` among
    which is a held-out test photo of the committed split (:func:`dmenet.data.splits.held_out_among`:
    ``../shared/data/cuhk/image`` is the 5 CUHK test photos), as ``calibrate dbd / head / feature-head`` do: S is
    trained on training images only (``--labelled``), and D adapts to unlabelled training photos only (``--real``:
    adapting to the test photos is training on them). ``photos``: the names the dataset reads, listed as it lists
    them (:func:`dmenet.data.real.real_photo_entries`; the labelled ``image/`` by :func:`syndof.io.image_entries`,
    :func:`syndof.io.index_by_stem`'s listing), so a file it never reads is not refused."""
    from dmenet.data.splits import held_out_among

    tested = held_out_among(photos)
    if tested:
        raise ConfigError(f"{option} {folder}: {tested[0].name} is a held-out test photo ({len(tested)} there; "
                          "experiments/cuhk_split.json); train on training images only, e.g. the folders of "
                          "experiments/build_training_set.py (the train subset of cuhk/train_image)")


def build_data(cfg: ExperimentConfig, rank: int
               ) -> tuple[dict[str, DomainStream], list[dict[str, torch.Tensor]], int, list[str]]:
    """(streams by domain, validation batches, steps per epoch, ``PATH: reason`` of each validation sample that
    could not be read and was left out). Each validation batch: ``image`` (b, 3, c, c) float32 RGB in [0, 1] and
    ``label`` (b, 1, c, c) σ/σ_max in [0, 1], centre crops of ``data.crop`` = c px, b ≤ ``train.batch_synthetic``."""
    d, t = cfg.data, cfg.train
    joint = parse_choice(Stage, t.stage, "train.stage") is Stage.JOINT
    if not d.synthetic:
        raise ConfigError("no synthetic data: pass --synthetic DIR (a SYNDOF folder) or set data.synthetic")
    if joint and (not d.real or not d.labelled):
        raise ConfigError("--stage joint needs --real DIR (unlabelled photos) and --labelled DIR (image/ + gt/); "
                          "with renders only, --stage blur trains B (σ) alone on --synthetic")
    if joint:
        # the names each dataset reads, listed as it lists them (no more, no fewer: a hidden `.trash/` copy, a
        # notes file or a folder named like a test photo is not trained on and was refused; §26 K5)
        images = Path(d.labelled) / "image"  # a folder without image/ is named by LabelledDataset
        _check_no_test_photos("--labelled", d.labelled, io.image_entries(images) if images.is_dir() else [])
        real = Path(d.real)
        _check_no_test_photos("--real", d.real, real_photo_entries(real) if real.is_dir() else [])
    max_coc = cfg.model.max_coc
    synthetic, val = SyntheticDataset(d.synthetic).split(d.val_count)
    if synthetic.max_coc > max_coc:
        log.warning("%s: data max_coc %g > model.max_coc %d; labels above σ_max are clipped", d.synthetic,
                    synthetic.max_coc, max_coc)

    def transform(sample: dict[str, Any], gen: torch.Generator) -> dict[str, torch.Tensor]:
        """Augment one sample (resize for the crop, random downscale, crop, vflip, rot90; σ scaled with the image)
        and convert it with :func:`dmenet.data.transforms.to_tensors` (image (3, H, W) [0, 1], label σ/σ_max, mask)."""
        return to_tensors(augment(sample, d.crop, gen, max_min_side=d.max_min_side, vflip=d.vflip, rot90=d.rot90,
                                  scale_min=d.scale_min, scale_p=d.scale_p), max_coc)

    def synthetic_transform(sample: dict[str, Any], gen: torch.Generator) -> dict[str, torch.Tensor]:
        """As ``transform``, plus the synthetic-only re-blur augmentation (σ composed in quadrature, px); label (1,
        H, W) σ/σ_max in [0, 1]."""
        return to_tensors(augment(sample, d.crop, gen, max_min_side=d.max_min_side, vflip=d.vflip, rot90=d.rot90,
                                  scale_min=d.scale_min, scale_p=d.scale_p, reblur_p=d.reblur_p,
                                  reblur_max=d.reblur_max), max_coc)

    streams = {"synthetic": DomainStream(synthetic, t.batch_synthetic, _stream_seed(t.seed, 0, rank),
                                         synthetic_transform, "synthetic", d.loader_threads)}
    if joint:
        polarity = parse_choice(GtPolarity, d.gt_polarity, "data.gt_polarity")
        labelled = LabelledDataset(d.labelled, white_is_blurred=polarity.white_is_blurred)
        streams["labelled"] = DomainStream(labelled, t.batch_labelled, _stream_seed(t.seed, 1, rank), transform,
                                           "labelled", d.loader_threads)
        streams["unlabelled"] = DomainStream(RealDataset(d.real), t.batch_unlabelled, _stream_seed(t.seed, 2, rank),
                                             transform, "unlabelled", d.loader_threads)
    val_skipped: list[str] = []
    val_batches = _validation_batches(val, cfg, val_skipped) if val is not None else []
    steps_per_epoch = cfg.optim.steps_per_epoch or max(1, len(synthetic) // t.batch_synthetic)
    return streams, val_batches, steps_per_epoch, val_skipped


def _validation_batches(val: SyntheticDataset, cfg: ExperimentConfig, skipped: list[str]
                        ) -> list[dict[str, torch.Tensor]]:
    """The validation samples as batches of ``train.batch_synthetic``; an unreadable one is left out with a warning
    and its ``PATH: reason`` appended to ``skipped``."""
    samples = []
    for i in range(len(val)):
        try:
            sample = val.load(i)
        except io.InputError as exc:
            reason = exc.reason_for(val.describe(i))  # its σ map: named, not the image
            log.warning("validation: skipping unreadable %s (%s)", val.describe(i), reason)
            skipped.append(f"{val.describe(i)}: {reason}")
            continue
        samples.append(to_tensors(augment(sample, cfg.data.crop, None, max_min_side=cfg.data.max_min_side),
                                  cfg.model.max_coc))
    b = cfg.train.batch_synthetic
    return [{k: torch.stack([s[k] for s in samples[i : i + b]]) for k in ("image", "label")}
            for i in range(0, len(samples), b)]


# -------------------------------------------------------------------------------------------------------- training
def _gather_streams(streams: dict[str, DomainStream], world: int) -> dict[str, tuple]:
    """Stream states of every rank, keyed ``name@rank`` (collective: every rank must call it)."""
    local = {name: s.state_dict() for name, s in streams.items()}
    if world == 1:
        return {f"{name}@0": state for name, state in local.items()}
    gathered: list[Any] = [None] * world
    dist.all_gather_object(gathered, local)
    return {f"{name}@{r}": state for r, states in enumerate(gathered) for name, state in states.items()}


def _panel(trainer: Trainer, batch: dict[str, torch.Tensor]) -> Any:
    with torch.no_grad():
        trainer.model.blur.eval()
        pred = trainer.model.blur(batch["image"][:1].to(trainer.device)).defocus
        trainer.train_mode()
    return to_uint8_panel(batch["image"][:1], pred, batch["label"][:1])


def _check_run_folder(cfg: ExperimentConfig, run_dir: Path, resume: bool,
                      config_file: str | Path | None) -> Path | None:
    """:func:`check_resume` (returns the checkpoint folder) or :func:`check_new_run_folder` (returns None)."""
    if resume:
        return check_resume(cfg, run_dir)
    check_new_run_folder(cfg, run_dir, config_file)
    return None


def train(cfg: ExperimentConfig, run_dir: str | Path, resume: bool = False,
          config_file: str | Path | None = None) -> dict[str, Any]:
    """Run (or continue) training; returns a summary dict (steps, last losses, paths). ``config_file``: the YAML the
    config was read from (a new run's --out must not hold it). Refused before any work: see
    :func:`check_new_run_folder` (a new run) and :func:`check_resume` (a resume).

    The process that writes the run folder (rank 0; the only one without torchrun) holds
    :func:`syndof.io.folder_lock` on ``run_dir`` from before its first write to the end of the run: a second run
    (or ``--resume``) into the same folder meanwhile is refused (InputError naming ``--out``) instead of mixing its
    metrics, config and checkpoints with the first one's. The folder checks run before the lock and again inside it
    (a run that held the lock may have written the folder meanwhile). A folder the lock created is removed again when
    the run fails before writing anything into it."""
    run_dir = Path(run_dir)
    # checked on every rank before torch.distributed starts, so before rank 0 writes anything
    resume_from = _check_run_folder(cfg, run_dir, resume, config_file)
    if int(os.environ.get("RANK", "0")) != 0:  # the other ranks of a torchrun job write nothing: no lock
        return _train(cfg, run_dir, resume, resume_from)
    with io.folder_lock(run_dir, "--out"):  # a folder it made is removed if the run fails before writing into it
        resume_from = _check_run_folder(cfg, run_dir, resume, config_file)
        return _train(cfg, run_dir, resume, resume_from)


def _train(cfg: ExperimentConfig, run_dir: Path, resume: bool, resume_from: Path | None) -> dict[str, Any]:
    """:func:`train` once the run folder has been checked (and, on rank 0, locked)."""
    device, rank, world = setup_device(cfg)
    is_main = rank == 0
    torch.manual_seed(cfg.train.seed)
    streams, val_batches, steps_per_epoch, val_skipped = build_data(cfg, rank)
    start_from = cfg.train.init_from if not resume else None
    if (cfg.model.init is None and not cfg.train.init_from and cfg.loss.perceptual > 0
            and parse_choice(Stage, cfg.train.stage, "train.stage") is Stage.JOINT):
        log.warning("model.init is none: C, the frozen content network, keeps random weights, so L_perc "
                    "(loss.perceptual=%g) compares random features; give ImageNet weights with model.init",
                    cfg.loss.perceptual)
    model = build_dmenet(cfg.model, load_init=not resume and not start_from)
    model.recipe = cfg.inference.recipe()  # written with every model file; validation follows its σ path
    if start_from:
        source = load_weights_from(model, start_from)
        started_from, started_from_meta = checkpoint.START_KEYS  # kept by a --resume (checkpoint.resumed_init)
        model.init_info = {**model.init_info, started_from: str(start_from), started_from_meta:
                           {k: v for k, v in source.items() if k not in RESERVED_KEYS}}
        log.info("started from the weights of %s", start_from)
    run = None if resume else checkpoint.new_run(start_from)  # from secrets: no random stream of the run moves
    model = model.to(device)
    trainer = Trainer(model, cfg, device, steps_per_epoch)
    if resume:
        meta = checkpoint.load_checkpoint(resume_from, trainer, streams, rank)
        model.init_info = checkpoint.resumed_init(meta, model.init_info)  # a run started --init-from a file says so
        run, renamed = checkpoint.resumed_run(meta)
        log.info("resumed %s at step %d (run %s)", run_dir, trainer.step, run["run_id"])
        if renamed:
            log.info("%s records no run_id (written before %s): the run goes on as run %s", resume_from,
                     checkpoint.RUN_ID_SINCE, run["run_id"])
    logger = None
    if is_main:  # only now that the config has built the data, the model and the optimisers (and loaded a resume)
        run_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            truncate_metrics(run_dir / "metrics.jsonl", trainer.step)
            for stale in checkpoint.remove_stale_temporaries(run_dir):  # a checkpoint a killed run left half-written
                log.info("removed %s (a checkpoint left half-written)", stale)
        # W&B starts before the first file of a new run is written: a start that fails (online without a login)
        # leaves the folder as it was (folder_lock removes a folder it made and nothing was written into)
        logger = RunLogger(run_dir, cfg.train.wandb, cfg.train.wandb_project, config_to_dict(cfg), resume)
        try:
            if not resume:  # a run resumed from before data.json existed gets none: what it read is unknown
                write_data_record(run_dir, data_fingerprints(cfg))
            write_text_atomic(run_dir / "config.yaml", dump_config(cfg))
        except BaseException:
            logger.close()
            raise
    t = cfg.train
    sums: dict[str, float] = defaultdict(float)
    count, window, metrics = 0, [], {}
    pbar = tqdm(total=t.steps, initial=trainer.step, disable=not is_main, dynamic_ncols=True, desc=t.stage)
    start = time.perf_counter()
    try:
        while trainer.step < t.steps:
            batches = StepBatches(**{name: s.next_batch() for name, s in streams.items()})
            metrics = trainer.train_step(batches)
            step = trainer.step
            window.append(metrics["loss_main"])
            for key, value in metrics.items():
                sums[key] += value
            count += 1
            pbar.update(1)
            pbar.set_postfix({k.removeprefix("loss_"): f"{v:.4g}" for k, v in metrics.items() if k.startswith("loss")})
            if logger and (step % t.log_every == 0 or step == t.steps):
                logger.log_scalars(step, {**{k: v / count for k, v in sums.items()}, "epoch": trainer.epoch,
                                          "sec_per_step": (time.perf_counter() - start) / count})
                sums.clear()
                count, start = 0, time.perf_counter()
            if logger and t.image_every and step % t.image_every == 0:
                logger.log_panel(step, "synthetic", _panel(trainer, batches.synthetic))
            if step % t.ckpt_every == 0 or step == t.steps:
                _checkpoint(trainer, streams, cfg, run_dir, val_batches, window, world, logger, run, val_skipped)
                window = []
    finally:
        pbar.close()
        for s in streams.values():
            s.close()
        if logger:
            logger.close()
    trainer.assert_perceptual_frozen()
    trainer.sync_buffers()
    digests = trainer.replica_digests()
    if len(set(digests)) != 1:
        raise RuntimeError(f"data-parallel replicas diverged: {digests}")
    summary = {"steps": trainer.step, "world_size": world, "last_metrics": metrics,
               "skipped": {name: s.skipped for name, s in streams.items() if s.skipped}}
    if val_skipped:
        summary["skipped"]["validation"] = val_skipped
    if is_main and summary["skipped"]:
        log.warning("%d training image(s) were skipped as unreadable (%s): each checkpoint's train.json lists them "
                    "(under 'streams', the validation's under 'extra')", sum(map(len, summary["skipped"].values())),
                    ", ".join(summary["skipped"]))
    if is_main:
        write_json_atomic(run_dir / "replicas.json", {"world_size": world, "digests": digests, "in_sync": True})
        summary["model"] = str(save_model(run_dir / "model_last", model, {"step": trainer.step,
                                                                          "stage": cfg.train.stage, **run}))
    return summary


def _checkpoint(trainer: Trainer, streams: dict[str, DomainStream], cfg: ExperimentConfig, run_dir: Path,
                val_batches: list, window: list[float], world: int, logger: RunLogger | None,
                run: dict[str, Any], val_skipped: list[str]) -> None:
    states = _gather_streams(streams, world)  # collective
    trainer.sync_buffers()  # collective
    trainer.assert_perceptual_frozen()
    if logger is not None:
        if val_batches:
            metric = trainer.validate(val_batches)
            logger.log_scalars(trainer.step, {"val_loss_defocus": metric})
        else:
            metric = sum(window) / max(len(window), 1)
        extra = {"metric": metric, **({"validation_skipped": val_skipped} if val_skipped else {})}
        folder = checkpoint.save_checkpoint(run_dir, trainer, states, config_to_dict(cfg), extra, run)
        best = checkpoint.update_pointers(run_dir, folder, trainer.step, metric, cfg.train.keep_last)
        log.info("step %d: checkpoint %s (metric %.5g%s)", trainer.step, folder.name, metric, ", best" if best else "")
    if world > 1:
        dist.barrier()


@cli.entry_point(errors=(NonFiniteLossError,))
def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry (the module docstring is its --help); returns the exit status."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    cli.prepare_process(args, auto_device=True)
    try:
        cfg = resolve_config(args)
        with stopped.say_how_to_resume("dmenet.train", argv, args.out, args.resume, checkpoint.resolve,
                                       speak=int(os.environ.get("RANK", "0")) == 0):
            summary = train(cfg, args.out, resume=args.resume, config_file=None if args.resume else args.config)
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    log.info("done: %d steps, model %s", summary["steps"], summary.get("model"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
