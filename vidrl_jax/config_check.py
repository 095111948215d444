"""Validation of a whole config before any work starts: clear errors naming the field.

`validate(config)` raises a ConfigError for the first bad field, naming the field,
its value and a fix (`agent.lr=-1.0 must be > 0 (a learning rate); e.g.
--config.agent.lr=0.0003`); `check_output_dir(path)` does the same for --workdir.
Neither touches a JAX device (run.py calls validate before jax.distributed starts)
nor writes anything that stays. Checks, in order: every float finite; choices;
task names; numeric ranges (by field name anywhere in the config, then per field);
layer-width tuples; sizes the models cannot take; relations between fields; the
reward (some term must be on); paths to weights that must exist.
"""
import difflib
import math
import numbers
import os
import tempfile

from vidrl_jax.diffusion.model_io import TARGETS
from vidrl_jax.envs.tasks import check_task
from vidrl_jax.errors import ConfigError
from vidrl_jax.rewards import terms as reward_terms
from vidrl_jax.rewards import video_level

CAMERAS = ("corner", "corner2", "corner3", "topview", "behindGripper", "gripperPOV")


# ----------------------------------------------------------------------------- helpers
def leaves(config, prefix=""):
    """(dotted field, value) of every non-section field of a ConfigDict, in order."""
    for key, value in config.items():
        field = f"{prefix}{key}"
        if hasattr(value, "items") and hasattr(value, "to_dict"):
            yield from leaves(value, field + ".")
        else:
            yield field, value


def fields(config):
    """Every dotted field and section name of `config` (for 'did you mean')."""
    out = []
    for key, value in config.items():
        out.append(key)
        if hasattr(value, "items") and hasattr(value, "to_dict"):
            out += [f"{key}.{f}" for f in fields(value)]
    return out


def close_fields(config, field, n=3):
    """Fields of `config` whose dotted names are close to `field`."""
    names = fields(config)
    leaf = field.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(field, names, n=n, cutoff=0.6)
    close += [f for f in names if f.rsplit(".", 1)[-1] == leaf and f not in close]
    return close[:n]


def _get(config, field):
    for key in field.split("."):
        config = config[key]
    return config


def _flag_value(value):
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    return repr(value) if isinstance(value, str) else str(value)


def _example(field, test, fallback, defaults=None):
    """`--config.FIELD=V`, V from `defaults` (a config) where it passes `test`, else
    `fallback`."""
    try:
        value = _get(defaults, field) if defaults is not None else None
    except (KeyError, AttributeError):
        value = None
    if value is None or not _passes(test, value):
        value = fallback
    return f"--config.{field}={_flag_value(value)}"


def _passes(test, value):
    try:
        return bool(test(value))
    except TypeError:  # a string or None where a number belongs
        return False


def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_num(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _int_ge(lo):
    return (lambda v: _is_int(v) and v >= lo), f"an int >= {lo}"


def _num(test, text):
    return (lambda v: _is_num(v) and test(v)), text


_POS = _num(lambda v: v > 0, "> 0")
_NONNEG = _num(lambda v: v >= 0, ">= 0")
_UNIT_OPEN_CLOSED = _num(lambda v: 0 < v <= 1, "in (0, 1]")
_UNIT_CLOSED = _num(lambda v: 0 <= v <= 1, "in [0, 1]")
_UNIT_CLOSED_OPEN = _num(lambda v: 0 <= v < 1, "in [0, 1)")


def _require(config, field, rule, what, fallback, defaults=None):
    value = _get(config, field)
    test, text = rule
    if not _passes(test, value):
        raise ConfigError(f"{field}={value!r} must be {text} ({what}); "
                          f"e.g. {_example(field, test, fallback, defaults)}")


def _choice(value, field, choices):
    if value not in choices:
        raise ConfigError(f"{field}={value!r} is not valid; choose one of {', '.join(choices)}")


# ----------------------------------------------------------------------------- rules
# Rules by field name: they hold for every field so named anywhere in the config
# (agent.lr, agent.fb.lr, vae.lr, diffusion.lr, and any field added later).
BY_NAME = (
    (lambda k: k == "lr" or k.endswith("_lr"), _POS, "a learning rate", 3e-4),
    (lambda k: k == "discount" or k.endswith("_discount"), _UNIT_OPEN_CLOSED,
     "a discount factor", 0.99),
    (lambda k: k == "tau" or k.endswith("_tau"), _UNIT_OPEN_CLOSED,
     "the target networks' soft-update rate", 0.005),
    (lambda k: k == "batch_size", _int_ge(1), "a batch size", 8),
    (lambda k: k.endswith("_every"), _int_ge(1), "an interval, in steps", 1000),
    (lambda k: k == "num_workers", _int_ge(1), "a worker count", 2),
    (lambda k: k.endswith("_stride"), _int_ge(1), "a stride", 1),
    (lambda k: k == "seed", _int_ge(0), "a random seed", 0),
)

# Per-field rules: (field, rule, what it is, fallback example).
# Reward weights are >= 0: every term is "higher = closer to the task" (video: minus
# a distance or a cosine to the goal video; frame: FB's goal-reaching reward;
# likelihood: the demo model's likelihood; roboclip: CLIP text-video similarity), so
# a negative weight trains the agent away from the goal; 0 switches a term off.
# Weights of losses (vae.kl_weight, agent.fb.ortho_weight) are >= 0 likewise: a
# negative one rewards what the term penalises.
FIELDS = (
    ("seeds", _int_ge(1), "agents trained at once", 1),
    ("env.size", (lambda v: _is_int(v) and 8 <= v <= 1024, "an int in [8, 1024]"),
     "frame side, pixels", 32),
    ("env.action_repeat", _int_ge(1), "env steps per action", 1),
    ("env.max_episode_steps", _int_ge(1), "the episode time limit", 200),
    ("demos.episodes_per_task", _int_ge(1), "demos recorded per task", 20),
    ("demos.steps_after_success", _int_ge(0), "steps recorded after success", 20),
    ("demos.episodes_per_shard", _int_ge(1), "episodes per shard file", 16),
    ("vae.latent_channels", _int_ge(1), "latent channels", 8),
    ("vae.patch_size", _int_ge(1), "the patch embedding's side", 2),
    ("vae.temporal_downsample", _int_ge(1), "frames per latent frame", 4),
    ("vae.kl_weight", _NONNEG, "a loss weight", 1e-6),
    ("vae.clip_length", _int_ge(1), "frames per training clip", 17),
    ("vae.steps", _int_ge(1), "training steps", 3000),
    ("diffusion.num_res_blocks", _int_ge(1), "residual blocks per level", 1),
    ("diffusion.heads", _int_ge(1), "attention heads", 4),
    ("diffusion.text_dim", _int_ge(1), "the instruction embedding's size", 64),
    ("diffusion.timesteps", _int_ge(2), "diffusion timesteps", 1000),
    ("diffusion.cond_dropout", _UNIT_CLOSED_OPEN, "a dropout probability", 0.1),
    ("diffusion.ema_decay", _UNIT_CLOSED_OPEN, "an EMA decay", 0.999),
    ("diffusion.steps", _int_ge(0), "pretraining steps", 3000),
    ("diffusion.finetune_steps", _int_ge(0), "finetuning steps", 0),
    ("diffusion.clip_length", _int_ge(2), "frames per training video", 17),
    ("diffusion.views_per_episode", _int_ge(1), "videos resampled per demo", 8),
    ("diffusion.val_fraction", _UNIT_CLOSED_OPEN, "the held-out share of demos", 0.1),
    ("diffusion.sample_steps", _int_ge(1), "DDIM steps of logged samples", 20),
    ("goal.sampling_steps", _int_ge(1), "DDIM steps", 50),
    ("goal.eta", _UNIT_CLOSED, "DDIM's noise scale", 0.0),
    ("goal.guidance_scale", _NONNEG, "the classifier-free guidance scale", 10.0),
    ("goal.num_videos", _int_ge(1), "goal videos sampled", 8),
    ("judge.episodes", _int_ge(0), "expert episodes the goal-video judge trains on, 0 = no judge", 20),
    ("judge.steps", _int_ge(1), "the judge's training steps", 1500),
    ("reward.learned", _NONNEG, "a reward weight", 0.0),
    ("reward.progress_net", _NONNEG, "a reward weight", 0.0),
    ("reward.progress_net_steps", _int_ge(1), "the progress net's training steps", 2000),
    ("reward.learned_lr", _NONNEG, "the learned reward model's learning rate", 3e-4),
    ("reward.learned_domain_weight", _NONNEG, "the weight of the learned model's domain loss", 3.0),
    ("clip.last_k", _int_ge(0), "last frames searched, 0 = all", 0),
    ("clip.smooth", _int_ge(1), "a moving-average window, 1 = none", 1),
    ("agent.init_temperature", _POS, "SAC's initial temperature", 0.1),
    ("agent.updates_per_call", _int_ge(1), "updates per fused call", 10),
    ("agent.utd", _POS, "updates per env step", 1.0),
    ("agent.replay_capacity", _int_ge(1), "transitions the replay holds", 100_000),
    ("agent.prefill_steps", _int_ge(0), "random-policy steps before learning", 2000),
    ("agent.total_steps", _int_ge(1), "env steps", 100_000),
    ("agent.eval_episodes", _int_ge(1), "episodes per evaluation", 10),
    ("agent.encoder_feature_dim", _int_ge(1), "the pixel encoder's output size", 50),
    ("agent.aug_pad", _int_ge(0), "random-shift padding, pixels", 4),
    ("agent.fb.z_dim", _int_ge(1), "FB's task-embedding size", 32),
    ("agent.fb.ortho_weight", _NONNEG, "a loss weight", 1.0),
    ("agent.fb.z_mix_ratio", _UNIT_CLOSED, "a share of z", 0.5),
    ("agent.fb.actor_noise", _NONNEG, "a noise std", 0.2),
    ("agent.fb.actor_noise_clip", _NONNEG, "a noise clip", 0.3),
    ("reward.video", _NONNEG, "a reward weight", 1.0),
    ("reward.frame", _NONNEG, "a reward weight", 1.0),
    ("reward.likelihood", _NONNEG, "a reward weight", 0.0),
    ("reward.roboclip", _NONNEG, "a reward weight", 0.0),
    ("reward.window", _int_ge(2), "frames of video_window=last", 16),
)

# Layer widths: non-empty tuples of ints >= 1.
WIDTHS = ("vae.channels", "diffusion.channels", "agent.hidden", "agent.fb.hidden",
          "agent.encoder_channels")


def _has(config, field):
    try:
        _get(config, field)
        return True
    except (KeyError, AttributeError):
        return False


def check_finite(config):
    """Every float of `config` (and in its tuples) is finite."""
    for field, value in leaves(config):
        items = value if isinstance(value, (tuple, list)) else (value,)
        for v in items:
            if _is_num(v) and not _is_int(v) and not math.isfinite(v):
                raise ConfigError(f"{field}={value!r} must be finite (not nan or inf); "
                                  f"set --config.{field}=NUMBER")


def check_ranges(config, defaults=None):
    for field, value in leaves(config):
        key = field.rsplit(".", 1)[-1]
        for matches, rule, what, fallback in BY_NAME:
            if matches(key):
                _require(config, field, rule, what, fallback, defaults)
    for field, rule, what, fallback in FIELDS:
        if _has(config, field):
            _require(config, field, rule, what, fallback, defaults)
    for field in WIDTHS:
        if not _has(config, field):
            continue
        value = _get(config, field)
        if not (isinstance(value, (tuple, list)) and value
                and all(_is_int(v) and v >= 1 for v in value)):
            raise ConfigError(f"{field}={value!r} must be a non-empty tuple of ints >= 1 "
                              f"(layer widths); e.g. "
                              f"{_example(field, lambda v: True, (64, 64), defaults)}")
    levels = config.diffusion.attention_levels
    if not (isinstance(levels, (tuple, list)) and all(_is_int(v) for v in levels)):
        raise ConfigError(f"diffusion.attention_levels={levels!r} must be a tuple of ints "
                          f"(UNet levels); e.g. --config.diffusion.attention_levels=1")


def check_sizes(config, num_devices=1):
    """Sizes the models cannot take (the models' own checks, run before any stage)."""
    from vidrl_jax.diffusion import sampler, schedules
    from vidrl_jax.models import unet3d, vae3d
    from vidrl_jax.train import diffusion as train_diffusion

    down = config.vae.spatial_downsample
    want = config.vae.get("patch_size", 1) * 2 ** (len(config.vae.channels) - 1)
    if down != want:
        raise ConfigError(
            f"vae.spatial_downsample={down} must be vae.patch_size * 2**(len(vae.channels)-1)"
            f" = {want}")
    if config.env.size % down:
        raise ConfigError(
            f"env.size={config.env.size} must be divisible by vae.spatial_downsample={down}")
    vae_cfg = vae3d.as_config(config.vae, size=config.env.size)  # patch size, time halvings
    latent = config.env.size // down
    unet = 2 ** (len(config.diffusion.channels) - 1)
    if latent % unet:
        raise ConfigError(
            f"env.size={config.env.size} gives {latent}px latents, not divisible by "
            f"2**(len(diffusion.channels)-1)={unet}; change env.size or diffusion.channels")
    td = vae_cfg.temporal_downsample
    for field in ("vae.clip_length", "diffusion.clip_length"):
        t = _get(config, field)
        if (t - 1) % td or (field == "diffusion.clip_length" and t < 2):
            raise ConfigError(
                f"{field}={t} must be 1 + a multiple of "
                f"vae.temporal_downsample={td}; e.g. --config.{field}={1 + 4 * td}")
    # heads vs widths, attention levels, dtype, text mode
    unet3d.make_unet(train_diffusion.unet_config(config, config.vae.latent_channels))
    timesteps = int(config.diffusion.timesteps)
    if config.diffusion.schedule == "linear" and schedules._linear_betas(timesteps).max() >= 1:
        raise ConfigError(f"diffusion.timesteps={timesteps} is too small for the linear "
                          "schedule (a beta reaches 1); e.g. --config.diffusion.timesteps=1000")
    for field in ("goal.sampling_steps", "diffusion.sample_steps"):
        try:
            sampler.ddim_timesteps(timesteps, int(_get(config, field)))
        except ConfigError:
            raise ConfigError(f"{field}={_get(config, field)} must be in 1..{timesteps} "
                              f"(diffusion.timesteps); e.g. --config.{field}="
                              f"{min(50, timesteps)}") from None
    for field in ("vae.batch_size", "diffusion.batch_size", "agent.batch_size"):
        section, key = field.split(".")
        if config[section][key] % num_devices:
            raise ConfigError(
                f"{field}={config[section][key]} must be divisible by the {num_devices} devices")


def check_relations(config):
    a = config.agent
    if a.replay_capacity < a.batch_size:
        raise ConfigError(
            f"agent.replay_capacity={a.replay_capacity} is smaller than "
            f"agent.batch_size={a.batch_size}; e.g. --config.agent.replay_capacity="
            f"{max(100_000, a.batch_size)}")
    # Prefill: the agent acts randomly for its first prefill_steps env steps and learns
    # only after them, so prefill_steps >= total_steps never learns; and the random
    # steps must fit in the replay (more would overwrite each other before the first
    # update sees them).
    if a.prefill_steps >= a.total_steps:
        raise ConfigError(
            f"agent.prefill_steps={a.prefill_steps} must be < agent.total_steps="
            f"{a.total_steps} (the agent learns only after the prefill's random steps); "
            f"e.g. --config.agent.prefill_steps={max(0, min(2000, a.total_steps // 10))}")
    if a.prefill_steps > a.replay_capacity:
        raise ConfigError(
            f"agent.prefill_steps={a.prefill_steps} must be <= agent.replay_capacity="
            f"{a.replay_capacity} (the random-policy steps before learning must fit in the "
            f"replay); e.g. --config.agent.prefill_steps={a.replay_capacity}")
    if not config.demos.tasks:
        raise ConfigError("demos.tasks is empty: the video models need demos of at least "
                          "one task; e.g. --config.demos.tasks=door-open-v3")
    if config.clip.prompt_mode in ("generic", "both") and not config.clip.generic_prompts:
        raise ConfigError(f"clip.prompt_mode={config.clip.prompt_mode!r} needs "
                          f"clip.generic_prompts (non-empty); or --config.clip.prompt_mode="
                          f"instruction")
    d = config.diffusion
    if d.holdout_task and d.finetune_steps:
        raise ConfigError("diffusion.holdout_task=True excludes env.task from training, so "
                          "diffusion.finetune_steps must be 0; e.g. "
                          "--config.diffusion.finetune_steps=0")
    if d.holdout_task and d.init_from:
        raise ConfigError("diffusion.holdout_task=True with diffusion.init_from: the loaded "
                          "model may have seen env.task; set one of them")
    if d.init_from and not d.finetune_steps:
        raise ConfigError("diffusion.init_from is set but diffusion.finetune_steps=0: nothing "
                          "to train; e.g. --config.diffusion.finetune_steps=1000")
    if not d.init_from and d.steps < 1:
        raise ConfigError(f"diffusion.steps={d.steps} must be >= 1 without "
                          f"diffusion.init_from (nothing would train the model); e.g. "
                          f"--config.diffusion.steps=3000")


def check_reward(config):
    """Some reward term is on (the agent stage's own rule, run first); CLIP users have
    weights."""
    from vidrl_jax.rewards import terms
    try:
        terms.active_terms(config.reward)
    except ConfigError:
        raise ConfigError(
            "reward.env='none' and every reward weight (reward.video, reward.frame, "
            "reward.learned, reward.progress_net, reward.likelihood, reward.roboclip) is 0: the agent would learn from nothing; "
            "e.g. --config.reward.video=1 or --config.reward.env=dense") from None
    for uses_clip, field, off in (
            (float(config.reward.roboclip) > 0, "reward.roboclip > 0", "reward.roboclip=0"),
            (config.reward.frame_features == "clip", "reward.frame_features=clip",
             "reward.frame_features=vae")):
        if uses_clip and not config.clip.path:
            raise ConfigError(f"{field} needs CLIP weights: set --config.clip.path=DIR "
                              f"(a local CLIP directory) or use --config.{off}")


def check_paths(config):
    """Weight directories named by the config exist."""
    from vidrl_jax.diffusion import model_io
    from vidrl_jax.models import clip

    path = config.clip.path
    if path:
        full = os.path.expanduser(str(path))
        hub_id = clip._HUB_ID.match(str(path)) and not str(path).startswith(".")
        if os.path.exists(full) and not os.path.isdir(full):
            raise ConfigError(f"clip.path={path!r} is a file, not a directory; set "
                              f"--config.clip.path=DIR (config.json, weights, tokenizer)")
        if not os.path.isdir(full) and (not hub_id or clip._offline()):
            why = " and HF_HUB_OFFLINE is set (no hub download)" if hub_id else ""
            raise ConfigError(f"clip.path={path!r}: no such directory{why}; set "
                              f"--config.clip.path=DIR (a local CLIP directory: config.json, "
                              f"weights, tokenizer) or --config.clip.path='' (no CLIP)")
    path = config.diffusion.init_from
    if path:
        if not os.path.isdir(path):
            raise ConfigError(f"diffusion.init_from={path!r}: no such directory; set it to a "
                              f"finished diffusion stage directory (WORKDIR/diffusion) or "
                              f"--config.diffusion.init_from=''")
        missing = [f for f in (model_io.CONFIG_FILE, model_io.PARAMS_FILE)
                   if not os.path.exists(os.path.join(path, f))]
        if missing:
            raise ConfigError(f"diffusion.init_from={path!r} has no trained diffusion model "
                              f"(missing {', '.join(missing)}); set it to a finished "
                              f"diffusion stage directory (WORKDIR/diffusion)")


def validate(config, num_devices=1, defaults=None):
    """Raises ConfigError for the first impossible or unknown value in `config`.

    `defaults`: a valid config (the config file's default) whose values are the
    examples in the messages' fixes; without it each rule's own example."""
    check_finite(config)
    _choice(config.env.camera, "env.camera", CAMERAS)
    _choice(config.reward.env, "reward.env", ("none", "sparse", "dense"))
    _choice(config.agent.obs, "agent.obs", ("state", "pixels"))
    _choice(config.reward.video_window, "reward.video_window", video_level.WINDOW_MODES)
    _choice(config.reward.video_metric, "reward.video_metric", video_level.METRICS)
    _choice(config.reward.video_goal, "reward.video_goal", ("decoded", "sampled", "expert"))
    _choice(config.reward.frame_features, "reward.frame_features", ("vae", "clip"))
    _choice(config.reward.get("video_form", "score"), "reward.video_form",
            video_level.FORMS)
    _choice(config.reward.get("frame_form", "fz"), "reward.frame_form",
            reward_terms.FRAME_FORMS)
    if config.reward.get("video_form", "score") == "progress" and \
            float(config.reward.video) > 0 and config.reward.frame_features != "vae":
        raise ConfigError("reward.video_form=progress needs reward.frame_features=vae (it "
                          "compares VAE frame latents); use --config.reward.frame_features="
                          "vae, another reward.video_form (score, shaped) or "
                          "--config.reward.video=0")
    if config.reward.get("video_form", "score") == "progress" and \
            not float(config.reward.get("video_progress_temperature", 0.02)) > 0:
        raise ConfigError(f"reward.video_progress_temperature="
                          f"{config.reward.video_progress_temperature!r} must be > 0; e.g. "
                          f"--config.reward.video_progress_temperature=0.1")
    if not float(config.reward.get("video_progress_gate", 0.0)) >= 0:
        raise ConfigError(f"reward.video_progress_gate={config.reward.video_progress_gate!r} "
                          f"must be >= 0 (0: no gate); e.g. "
                          f"--config.reward.video_progress_gate=0.1")
    _choice(config.diffusion.schedule, "diffusion.schedule", ("linear", "cosine"))
    _choice(config.diffusion.prediction, "diffusion.prediction", ("eps", "v"))
    _choice(config.diffusion.target, "diffusion.target", TARGETS)
    _choice(config.diffusion.text, "diffusion.text", ("table", "words"))
    _choice(config.clip.prompt_mode, "clip.prompt_mode", ("instruction", "generic", "both"))
    for field in ("vae.dtype", "diffusion.dtype"):
        if _has(config, field):
            _choice(_get(config, field), field, ("float32", "bfloat16"))
    check_task(config.env.task, "env.task")
    for task in config.demos.tasks:
        check_task(task, "demos.tasks")
    check_ranges(config, defaults)
    check_sizes(config, num_devices)
    check_paths(config)
    check_relations(config)
    check_reward(config)
    return config


def check_output_dir(path, flag="--workdir"):
    """ConfigError naming `flag` unless `path` is a writable directory or can be made
    one. Writes nothing inside an existing directory; a new one's nearest existing
    ancestor gets a probe file that is removed at once."""
    if not path:
        raise ConfigError(f"{flag} is empty; e.g. {flag}=runs/default")
    full = os.path.abspath(path)
    if os.path.exists(full):
        if not os.path.isdir(full):
            raise ConfigError(f"{flag}={path} exists and is not a directory; pass a "
                              f"directory (a new path is created)")
        if not os.access(full, os.W_OK | os.X_OK):
            raise ConfigError(f"{flag}={path} is not writable; pass a writable directory")
        return
    parent = full
    while not os.path.exists(parent):
        if os.path.islink(parent):
            raise ConfigError(f"{flag}={path} cannot be created: {parent} is a broken "
                              f"symbolic link; pass another path")
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ConfigError(f"{flag}={path} cannot be created: {parent} is a file, not a "
                          f"directory; pass another path")
    try:
        fd, probe = tempfile.mkstemp(prefix=".vidrl-write-probe-", dir=parent)
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        raise ConfigError(f"{flag}={path} cannot be created: no file can be written in "
                          f"{parent} ({e.strerror or type(e).__name__}); pass a writable "
                          f"path") from None


def fit_batches_to_devices(config, num_devices):
    """Rounds the global batch sizes up to a multiple of `num_devices` (e.g. 8 TPU cores)."""
    for section in ("vae", "diffusion", "agent"):
        b = config[section].batch_size
        config[section].batch_size = -(-b // num_devices) * num_devices
    return config
