"""Train Distill-DBDGAN networks (``--set train.stage=…``): ``teacher`` (T + D1), ``kd`` (S + D2 + D3 with a
cached or frozen teacher), ``joint`` (T and S together, all three discriminators).

    distill-train --config experiments/distill/student_d0.yaml --out runs/distill/d0 [--resume]
        [--set loss.consistency=0 train.steps=100]

Resumable: the batches and random draws of step k depend only on (train.seed, k), and a checkpoint holds every
network, optimiser and the step, so a resumed run reproduces an uninterrupted one exactly (on one device; a run may
resume on the other, with float rounding differences), on the data it started with: ``RUN/data.json`` records each
list file's SHA-256 and the names and sizes of the photos it selects (and the SHA-256 of a kd run's frozen
``train.teacher_model``), and a resume on other data (or another teacher under the same name) is refused
(``dmenet.training.data_record``). A resume may change ``train.steps`` (extend a run, or shorten it, never below
the steps its checkpoint has done): the cosine learning-rate decay is then stretched from the resume point to the
new total, continuous there, and every later checkpoint records that schedule (meta.json ``train_steps``; with a
constant rate, ``optim.final_lr_fraction=1``, the extended run equals one started with the new total). Each
checkpoint also exports the trained network as a model
file and scores it on the validation list (docs/distill.md §Selection). ``--set train.device=cuda`` trains on a GPU.

This module holds the loop, the resume rules and the command line; a run's networks and optimisers are built in
:mod:`dmenet.distill.run`, one step and the validation are :mod:`dmenet.distill.step`, the checkpoints
:mod:`dmenet.distill.checkpoints`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
import yaml

from dmenet.config import wants_cuda
from dmenet.configlib import ConfigError, config_to_dict, differing_keys, flat_keys
from dmenet.distill.checkpoints import (
    SCHEDULE_KEY,
    checkpoint_folder,
    checkpoint_schedule,
    checkpoint_step,
    latest_checkpoint,
    load_checkpoint,
    read_checkpoint_meta,
    restore_checkpoint_rows,
    run_schedule,
    save_checkpoint,
)
from dmenet.distill.config import SEED_STRIDE, DistillConfig, DistillStage, DistillTrainConfig, load_distill_config
from dmenet.distill.data import DataError, Item, TrainStream, labelled_items, sharp_items
from dmenet.distill.run import Run, build_run, stage_of
from dmenet.distill.step import train_step, validate
from dmenet.training import stopped
from dmenet.training.data_record import check_data_record, list_fingerprint, model_fingerprint, write_data_record
from dmenet.training.logging import RunLogger, truncate_metrics
from dmenet.training.resume import STEPS_KEY, named_keys, resume_free_keys, steps_problem, with_added_keys
from syndof import cli
from syndof.io import folder_lock, write_json_atomic, write_text_atomic

RUNTIME = ("device", "threads", "wandb")
"""train.* keys a resumed run may change: where it runs, not what it trains; train.steps may change too, never below
the steps its checkpoint has done (:mod:`dmenet.training.resume`, as dmenet.train)."""


ADDED_KEYS = {"train.init_from": None, "train.device": "cpu", "train.channels_last": False,
              "loss.sharp_consistency": True, "data.mask_suffix": ""}
"""Keys added to the config since the first resumable runs (3 Dec 2026), each with the value that does what a run
recorded without it did (:func:`dmenet.training.resume.with_added_keys`; a config.yaml without one reads as that
value, and a refusal names it): no start file (1f0e9fc), the CPU (4df3d76), the NCHW layout (774e4dd), the
sharp negatives taking the teacher's soft target (5cb6e1d: always so before 5 Dec, run J1 and the kd runs of 4 Dec;
today's default is off, so such a run resumes with ``--set loss.sharp_consistency=true``, never silently without
it), masks paired by the photo's own stem (440f2a7). A new config key goes here too."""


def _recipe(config_text: str) -> dict[str, object]:
    """A run's config.yaml text as flat ``section.key`` values (compared but for
    :func:`dmenet.training.resume.resume_free_keys`), an :data:`ADDED_KEYS` key it lacks at its old value."""
    return flat_keys(with_added_keys(yaml.safe_load(config_text), ADDED_KEYS))


def resume_point(cfg: DistillConfig, run_dir: Path, before: dict[str, object]
                 ) -> tuple[Path | None, dict, tuple[tuple[int, int], ...]]:
    """(last checkpoint or None, its meta.json, the schedule the resumed run trains under:
    :func:`~dmenet.distill.checkpoints.run_schedule`) of a ``--resume`` of ``run_dir`` whose config.yaml reads as
    ``before`` (:func:`_recipe`). Refused before any work: a ``train.steps`` below the steps the checkpoint has done
    (ConfigError, :func:`dmenet.training.resume.steps_problem`), a damaged step (one its folder's name does not repeat:
    :func:`~dmenet.distill.checkpoints.checkpoint_step`) or schedule record (CheckpointError naming meta.json)."""
    last = latest_checkpoint(run_dir)  # a resume before the first checkpoint starts at 0
    if last is None:
        return None, {}, ((0, cfg.train.steps),)
    meta = read_checkpoint_meta(last)
    step = meta.get("step")
    if isinstance(step, int) and not isinstance(step, bool) and step >= 0 and checkpoint_folder(run_dir, step) == last:
        problem = steps_problem(cfg.train.steps, step + 1, last)
        if problem is not None:
            raise ConfigError(problem)
    step = checkpoint_step(last, meta, cfg.train.steps)
    started = before.get(STEPS_KEY, DistillTrainConfig.steps)  # config.yaml read as a distill config: an int
    recorded = checkpoint_schedule(last, meta, int(started))
    return last, meta, run_schedule(recorded, step + 1, cfg.train.steps)


def _run_config_problem(run_dir: Path) -> str | None:
    """Why ``run_dir`` holds no distill run (None when its ``config.yaml`` reads as a distill config)."""
    config_file = run_dir / "config.yaml"
    if not config_file.is_file():
        return "no config.yaml of a distill run"
    try:
        load_distill_config(config_file)
    except (ValueError, OSError, yaml.YAMLError, TypeError, AttributeError) as exc:
        return f"its config.yaml is not a distill config: {cli.error_line(exc)}"
    return None


def holds_distill_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` is a distill-train run folder: its ``config.yaml`` reads as a distill config (a run
    killed before its first checkpoint has one too; another tool's run folder does not)."""
    return _run_config_problem(run_dir) is None


def run_folder_problem(run_dir: Path, resume: bool) -> str | None:
    """One line when ``run_dir`` cannot be used (checked before any work; nothing is changed), else None.

    A new run (no ``resume``) needs a missing path or an empty folder: any other folder would have its
    ``metrics.jsonl`` truncated and a config, val log and checkpoints mixed into it. ``resume`` needs a distill run
    (:func:`holds_distill_run`)."""
    if not resume:
        if holds_distill_run(run_dir) or latest_checkpoint(run_dir) is not None:
            return (f"--out {run_dir}: exists and holds a distill run; pass --resume to continue it, or choose a "
                    "new --out (nothing was changed)")
        return cli.new_folder_problem(run_dir, "distill-train starts a new run folder")
    if (run_dir.is_symlink() or run_dir.exists()) and not run_dir.is_dir():
        return f"--resume: {run_dir} is not a run folder (nothing was changed)"
    why = _run_config_problem(run_dir)
    if why is not None:
        return f"--resume: {run_dir} holds no run ({why}); start a new run without --resume (nothing was changed)"
    return None


def data_fingerprints(cfg: DistillConfig, labelled: list[Item], val: list[Item], sharp: list[Item],
                      sharp_val: list[Item]) -> dict[str, dict[str, object]]:
    """The list files the run reads, by config key: each list's
    :func:`dmenet.training.data_record.list_fingerprint` (its SHA-256, the names it lists, the names and sizes of
    the photos, masks and soft targets they select); ``labelled`` / ``val`` / ``sharp`` / ``sharp_val``: the items read
    through ``data.train_list`` / ``val_list`` / ``sharp_list`` / ``sharp_val_list`` (an empty one: a list not read).
    What ``RUN/data.json`` records when a run starts and a ``--resume`` compares."""
    d = cfg.data
    lists = {"data.train_list": (d.train_list, labelled), "data.val_list": (d.val_list, val),
             "data.sharp_list": (d.sharp_list, sharp), "data.sharp_val_list": (d.sharp_val_list, sharp_val)}
    return {key: list_fingerprint(path, [it.image.stem for it in items],
                                  [f for it in items for f in (it.image, it.mask, it.soft) if f is not None])
            for key, (path, items) in lists.items() if items}


TEACHER_KEY = "train.teacher_model"
"""The key of the frozen teacher's fingerprint in ``RUN/data.json`` (:func:`teacher_fingerprint`)."""


def teacher_fingerprint(cfg: DistillConfig) -> dict[str, dict[str, object]]:
    """``{TEACHER_KEY: fingerprint}`` of the model file a kd run distils from (``train.teacher_model``, frozen; read
    again at every resume, so a file retrained under its name since the start would teach the rest of the run:
    :func:`dmenet.training.data_record.model_fingerprint`), else empty (a joint run's teacher is trained and comes
    from the checkpoint on resume)."""
    if stage_of(cfg) is not DistillStage.KD or not cfg.train.teacher_model:
        return {}
    return {TEACHER_KEY: model_fingerprint(cfg.train.teacher_model)}


def train(cfg: DistillConfig, run_dir: Path, resume: bool = False, max_steps: int | None = None) -> Run:
    """Run (or continue) the configured stage in ``run_dir``; ``max_steps`` stops early (tests).

    Refused before any work (ConfigError, nothing changed): a new run into an existing non-empty folder, a resume
    of a folder that holds no distill run, a resume with a config that differs from the run's (but for the
    RUNTIME keys and ``train.steps``, which may not go below the steps done: :func:`resume_point`) or with list files
    (or the photos they select, or a kd run's frozen teacher file) that differ from those ``data.json`` records
    (:func:`data_fingerprints`, :func:`teacher_fingerprint`; a run from before that record resumes unchecked), a
    damaged last checkpoint (CheckpointError naming its file), and ``run_dir`` locked by another run (InputError
    naming --out; :func:`syndof.io.folder_lock` is held from before the first write to the end). A resume restores
    the rows of the checkpoint it starts from when a kill lost them
    (:func:`~dmenet.distill.checkpoints.restore_checkpoint_rows`)."""
    torch.set_num_threads(cfg.train.threads)
    device = torch.device("cuda" if wants_cuda(cfg.train.device) else "cpu")  # refused before anything is written
    run_dir = Path(run_dir)
    problem = run_folder_problem(run_dir, resume)
    if problem is not None:
        raise ConfigError(problem)
    # one run at a time in --out: a second process (e.g. the same command started twice) is refused before it
    # writes, instead of mixing its rows, config and checkpoints into the first one's; a folder the lock made is
    # removed again if the run fails before writing into it
    with folder_lock(run_dir, "--out"):
        problem = run_folder_problem(run_dir, resume)  # again: another run may have finished in it meanwhile
        if problem is not None:
            raise ConfigError(problem)
        return _train_locked(cfg, run_dir, resume, max_steps, device)


def _train_locked(cfg: DistillConfig, run_dir: Path, resume: bool, max_steps: int | None,
                  device: torch.device) -> Run:
    """:func:`train` once ``run_dir`` is checked and locked."""
    config_text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
    config_file = run_dir / "config.yaml"
    last, meta, schedule = None, {}, ((0, cfg.train.steps),)
    if resume:
        record = config_file.read_text()
        before, now = _recipe(record), _recipe(config_text)
        differ = named_keys(differing_keys(before, now, resume_free_keys(RUNTIME)), yaml.safe_load(record),
                            ADDED_KEYS)
        if differ:
            raise ConfigError(f"{config_file}: the resumed run's config differs from this one in {', '.join(differ)}")
        last, meta, schedule = resume_point(cfg, run_dir, before)
    start = 0
    stream = TrainStream(cfg.data, cfg.train.seed)
    val_items = labelled_items(cfg.data.images, cfg.data.masks, cfg.data.val_list, mask_suffix=cfg.data.mask_suffix)
    overlap = {it.image.stem for it in val_items} & {it.image.stem for it in stream.labelled}
    if overlap:
        raise DataError(f"{cfg.data.val_list}: {len(overlap)} stem(s) are also training images, e.g. {min(overlap)}")
    sharp_val = (sharp_items(cfg.data.sharp_val_images, cfg.data.sharp_val_list)
                 if cfg.data.sharp_val_images and cfg.data.sharp_val_list else [])
    sources = data_fingerprints(cfg, stream.labelled, val_items, stream.sharp, sharp_val) | teacher_fingerprint(cfg)
    if resume:  # other data (or teacher) under the same paths would train the run on what its record does not name
        check_data_record(run_dir, sources, since=(TEACHER_KEY,))
    torch.manual_seed(cfg.train.seed)
    run = build_run(cfg, device, start=last is None)
    run.schedule = schedule
    if last is not None:
        start = load_checkpoint(last, run) + 1
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in ("metrics.jsonl", "val.jsonl"):  # rows a killed run wrote past its last checkpoint
        truncate_metrics(run_dir / name, start - 1)
    if last is not None:  # and the rows of that checkpoint, if the kill came between saving it and logging them
        restore_checkpoint_rows(run_dir, last)
    # W&B starts before the first file of a new run is written: a failed start leaves the folder as it was
    logger = RunLogger(run_dir, cfg.train.wandb, "distill-dbdgan", config_to_dict(cfg), resume)
    try:
        if not resume:  # a run resumed from before data.json existed gets none: what it read is unknown
            write_data_record(run_dir, sources)
        if last is not None and SCHEDULE_KEY not in meta and len(schedule) > 1:
            # a checkpoint from before the record: config.yaml is about to say the new train.steps, so the total it
            # was trained with is written into its meta.json first (a kill before the next checkpoint loses nothing)
            write_json_atomic(last / "meta.json", {**meta, SCHEDULE_KEY: [list(schedule[0])]})
        write_text_atomic(config_file, config_text)
    except BaseException:
        logger.close()
        raise
    if last is not None and schedule[-1] == (start, cfg.train.steps):
        print(f"note: train.steps {schedule[-2][1]} -> {cfg.train.steps} from step {start}: the learning-rate decay is "
              f"stretched from there to step {cfg.train.steps}; the checkpoints record it ({SCHEDULE_KEY}, "
              "docs/distill.md)", flush=True)
    run.nets.train()
    if run.frozen_teacher is not None:
        run.frozen_teacher.eval()
    end = cfg.train.steps if max_steps is None else min(cfg.train.steps, max_steps)
    t0 = time.time()
    try:
        for step in range(start, end):
            torch.manual_seed(cfg.train.seed * SEED_STRIDE + step)
            logs = train_step(run, stream.batch(step), step)
            if step % cfg.train.log_every == 0 or step == end - 1:
                logs.update(lr=run.opt_g.param_groups[0]["lr"], sec=round(time.time() - t0, 1))
                logger.log_scalars(step, logs)
            if (step + 1) % cfg.train.ckpt_every == 0 or step == end - 1:
                val = validate(cfg, run.exported[1], val_items, sharp_val) if val_items else {}
                save_checkpoint(run_dir, run, step, val, cfg.train.keep_last)
                with (run_dir / "val.jsonl").open("a") as vlog:
                    vlog.write(json.dumps({"step": step, **val}) + "\n")
                if val:
                    logger.log_scalars(step, val)
                print(f"step {step} {json.dumps(val)} {time.time() - t0:.0f}s", flush=True)
    finally:
        logger.close()
    return run


EXAMPLE = "distill-train --config experiments/distill/tiny.yaml --out runs/distill_train_example"


@cli.entry_point
def main(argv: list[str] | None = None) -> int:
    """Command line entry (the module docstring is its --help); returns the exit status."""
    p = cli.parser("dmenet.distill.train", __doc__, EXAMPLE)
    cli.add_config(p, help="YAML experiment file (default: the built-in defaults)")
    p.add_argument("--out", required=True, help="run folder (checkpoints, metrics, config)")
    p.add_argument("--resume", action="store_true", help="continue the distill run in --out from its last checkpoint "
                   "(without it, --out must be new or empty)")
    cli.add_set(p)
    a = p.parse_args(argv)
    cfg = load_distill_config(a.config, a.overrides)
    with stopped.say_how_to_resume("dmenet.distill.train", argv, a.out, a.resume, latest_checkpoint):
        train(cfg, Path(a.out), a.resume)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
