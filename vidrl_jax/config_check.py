"""Validation of a whole config before any work starts: clear errors naming the field."""
from vidrl_jax.diffusion.model_io import TARGETS
from vidrl_jax.envs.tasks import check_task
from vidrl_jax.errors import ConfigError
from vidrl_jax.rewards import video_level

CAMERAS = ("corner", "corner2", "corner3", "topview", "behindGripper", "gripperPOV")


def _choice(value, field, choices):
    if value not in choices:
        raise ConfigError(f"{field}={value!r} is not valid; choose one of {', '.join(choices)}")


def _positive(value, field):
    if not value > 0:
        raise ConfigError(f"{field}={value!r} must be > 0")


def validate(config, num_devices=1):
    """Raises ConfigError for the first impossible or unknown value in `config`."""
    check_task(config.env.task, "env.task")
    for task in config.demos.tasks:
        check_task(task, "demos.tasks")
    _choice(config.env.camera, "env.camera", CAMERAS)
    for field in ("env.size", "env.max_episode_steps", "env.action_repeat", "env.num_workers",
                  "demos.episodes_per_task", "demos.num_workers",
                  "vae.batch_size", "diffusion.batch_size", "agent.batch_size",
                  "agent.updates_per_call", "agent.replay_capacity", "seeds"):
        section, _, key = field.rpartition(".")
        _positive((config[section] if section else config)[key], field)
    down = config.vae.spatial_downsample
    want = config.vae.get("patch_size", 1) * 2 ** (len(config.vae.channels) - 1)
    if down != want:
        raise ConfigError(
            f"vae.spatial_downsample={down} must be vae.patch_size * 2**(len(vae.channels)-1)"
            f" = {want}")
    if config.env.size % down:
        raise ConfigError(
            f"env.size={config.env.size} must be divisible by vae.spatial_downsample={down}")
    latent = config.env.size // down
    unet = 2 ** (len(config.diffusion.channels) - 1)
    if latent % unet:
        raise ConfigError(
            f"env.size={config.env.size} gives {latent}px latents, not divisible by "
            f"2**(len(diffusion.channels)-1)={unet}; change env.size or diffusion.channels")
    if (config.vae.clip_length - 1) % config.vae.temporal_downsample:
        raise ConfigError(
            f"vae.clip_length={config.vae.clip_length} must be 1 + a multiple of "
            f"vae.temporal_downsample={config.vae.temporal_downsample} (e.g. 9, 17)")
    for field in ("vae.batch_size", "diffusion.batch_size", "agent.batch_size"):
        section, key = field.split(".")
        if config[section][key] % num_devices:
            raise ConfigError(
                f"{field}={config[section][key]} must be divisible by the {num_devices} devices")
    _choice(config.reward.env, "reward.env", ("none", "sparse", "dense"))
    _choice(config.agent.obs, "agent.obs", ("state", "pixels"))
    _choice(config.reward.video_window, "reward.video_window", video_level.WINDOW_MODES)
    _choice(config.reward.video_metric, "reward.video_metric", video_level.METRICS)
    _choice(config.reward.video_goal, "reward.video_goal", ("decoded", "sampled"))
    _choice(config.reward.frame_features, "reward.frame_features", ("vae", "clip"))
    for uses_clip, field, off in (
            (float(config.reward.roboclip) > 0, "reward.roboclip > 0", "reward.roboclip=0"),
            (config.reward.frame_features == "clip", "reward.frame_features=clip",
             "reward.frame_features=vae")):
        if uses_clip and not config.clip.path:
            raise ConfigError(f"{field} needs CLIP weights: set --config.clip.path=DIR "
                              f"(a local CLIP directory) or use --config.{off}")
    _choice(config.diffusion.schedule, "diffusion.schedule", ("linear", "cosine"))
    _choice(config.diffusion.prediction, "diffusion.prediction", ("eps", "v"))
    _choice(config.diffusion.target, "diffusion.target", TARGETS)
    _choice(config.diffusion.text, "diffusion.text", ("table", "words"))
    _choice(config.clip.prompt_mode, "clip.prompt_mode", ("instruction", "generic", "both"))
    if config.agent.replay_capacity < config.agent.batch_size:
        raise ConfigError(
            f"agent.replay_capacity={config.agent.replay_capacity} is smaller than "
            f"agent.batch_size={config.agent.batch_size}")
    if config.reward.window < 2:
        raise ConfigError(f"reward.window={config.reward.window} must be >= 2 frames")
    return config


def fit_batches_to_devices(config, num_devices):
    """Rounds the global batch sizes up to a multiple of `num_devices` (e.g. 8 TPU cores)."""
    for section in ("vae", "diffusion", "agent"):
        b = config[section].batch_size
        config[section].batch_size = -(-b // num_devices) * num_devices
    return config
