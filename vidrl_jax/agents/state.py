"""Agent definition (static hyperparameters) and the agent state pytree.

`AgentDef` is a frozen, hashable dataclass of plain values: it builds the flax
modules and optax optimizers on demand, so the state carries no objects that jit
cannot see and the whole state can be vmapped (seeds), pmapped (devices) and
checkpointed (orbax) as one pytree.
"""
import dataclasses
import functools
from typing import Tuple

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from vidrl_jax.agents import networks as nets
from vidrl_jax.errors import ConfigError
from vidrl_jax.rewards import learned as learned_lib


@dataclasses.dataclass(frozen=True)
class AgentDef:
    obs_type: str                    # state | pixels
    obs_shape: Tuple[int, ...]       # (O,) or (H, W, C)
    action_dim: int
    feature_dim: int                 # P: frame-feature dim (phi); 0 = no FB input
    latent_dim: int                  # D: window-latent dim; 0 = no video reward column
    hidden: Tuple[int, ...] = (256, 256)
    lr: float = 3e-4
    discount: float = 0.99
    tau: float = 0.005
    init_temperature: float = 0.1
    target_entropy: float = -4.0
    batch_size: int = 256            # global batch (split over devices)
    updates_per_call: int = 10       # K
    encoder_channels: Tuple[int, ...] = (32, 32, 32, 32)
    encoder_feature_dim: int = 50
    aug_pad: int = 4
    # FB
    use_fb: bool = True
    z_dim: int = 32
    fb_hidden: Tuple[int, ...] = (256, 256)
    fb_lr: float = 1e-4
    fb_discount: float = 0.98
    fb_tau: float = 0.01
    ortho_weight: float = 1.0
    z_mix_ratio: float = 0.5
    fb_actor_noise: float = 0.2
    fb_actor_noise_clip: float = 0.3
    # Rewards: ((name, weight), ...) of the active terms; see vidrl_jax/rewards/terms.py
    reward_terms: Tuple[Tuple[str, float], ...] = (("env_dense", 1.0),)
    reward_normalize: bool = False
    video_metric: str = "cosine"     # see vidrl_jax/rewards/video_level.py
    video_form: str = "score"        # score | shaped | progress (rewards/terms.py)
    video_progress_temperature: float = 0.02  # video_form=progress: softmax temperature
    video_progress_gate: float = 0.0  # video_form=progress: off-path gate σ (0: none)
    frame_form: str = "fz"           # fz | fz_scaled | bsim (rewards/terms.py)
    # The learned term's goal discriminator (rewards/learned.py)
    learned_hidden: Tuple[int, ...] = (256, 256)
    learned_lr: float = 3e-4
    learned_domain_weight: float = 3.0

    @property
    def use_learned(self):
        return any(name == "learned" for name, _ in self.reward_terms)

    @property
    def pixels(self):
        return self.obs_type == "pixels"

    def encoder_module(self):
        if self.pixels:
            return nets.ConvEncoder(tuple(self.encoder_channels), self.encoder_feature_dim)
        return nets.IdentityEncoder()

    @property
    def feature_size(self):
        """Dim of encoder features h (what actor, critic and F see)."""
        return self.encoder_feature_dim if self.pixels else self.obs_shape[0]

    def critic_module(self):
        return nets.TwinCritic(tuple(self.hidden))

    def actor_module(self):
        return nets.TanhGaussianActor(tuple(self.hidden), self.action_dim)

    def forward_module(self):
        return nets.ForwardMap(tuple(self.fb_hidden), self.z_dim)

    def backward_module(self):
        return nets.BackwardMap(tuple(self.fb_hidden), self.z_dim)

    def fb_actor_module(self):
        return nets.FBActor(tuple(self.fb_hidden), self.action_dim)

    @staticmethod
    def optimizer(lr):
        return optax.adam(lr)


@flax.struct.dataclass
class AgentState:
    """Everything that changes during training; `defn` is static.

    step: int32 [] number of updates done. critic/actor/temp: see sac.py.
    fb: {"params": {"F","B","pi"}, "target": {"F","B"}, "opt": {"FB","pi"}} (empty dict
    when FB is off). reward_model: {"params", "opt"} of the learned term's goal
    discriminator (empty dict when the term is off). reward_stats: {term: {"count",
    "mean","var"}} running statistics.
    """
    step: jnp.ndarray
    critic: dict
    actor: dict
    temp: dict
    fb: dict
    reward_model: dict
    reward_stats: dict
    defn: AgentDef = flax.struct.field(pytree_node=False)


def agent_def_from_config(config, obs_dim, action_dim, feature_dim, latent_dim, plan=None):
    """Builds the AgentDef from config.agent / config.reward and the data dims.

    plan: the reward config resolved (rewards/terms.resolve), when the caller has it."""
    from vidrl_jax.rewards import terms as reward_terms
    a = config.agent
    if a.obs not in ("state", "pixels"):
        raise ConfigError(f"config.agent.obs={a.obs!r}; valid: 'state', 'pixels'")
    if a.obs == "pixels" and (np.ndim(obs_dim) != 1 or len(obs_dim) != 3):
        raise ConfigError(f"config.agent.obs='pixels' needs obs_dim (H, W, C), got {obs_dim!r}")
    if a.obs == "state" and np.ndim(obs_dim) != 0:
        raise ConfigError(f"config.agent.obs='state' needs an int obs_dim, got {obs_dim!r}")
    obs_shape = (int(obs_dim),) if a.obs == "state" else tuple(int(d) for d in obs_dim)
    plan = plan or reward_terms.resolve(config.reward)
    active = plan.terms
    use_fb = any(name == "frame" for name, _ in active)
    if use_fb and feature_dim <= 0:
        raise ConfigError("config.reward.frame > 0 needs frame features: pass feature_dim > 0")
    r = config.reward
    video_form, frame_form = r.get("video_form", "score"), r.get("frame_form", "fz")
    if any(name == "video" for name, _ in active) and latent_dim <= 0 and \
            video_form != "progress":  # (progress reads the frame features)
        raise ConfigError("config.reward.video > 0 needs window latents: pass latent_dim > 0")
    if video_form not in reward_terms.VIDEO_FORMS:
        raise ConfigError(f"config.reward.video_form={video_form!r}; valid: "
                          f"{', '.join(reward_terms.VIDEO_FORMS)}")
    if frame_form not in reward_terms.FRAME_FORMS:
        raise ConfigError(f"config.reward.frame_form={frame_form!r}; valid: "
                          f"{', '.join(reward_terms.FRAME_FORMS)}")
    temperature = float(r.get("video_progress_temperature", 0.02))
    if video_form == "progress" and not temperature > 0:
        raise ConfigError(f"config.reward.video_progress_temperature={temperature} must be "
                          "> 0; e.g. 0.02")
    gate = float(r.get("video_progress_gate", 0.0))
    if not gate >= 0:
        raise ConfigError(f"config.reward.video_progress_gate={gate} must be >= 0 (0: no "
                          "gate); e.g. 0.1")
    if video_form == "progress" and any(n == "video" for n, _ in active) and feature_dim <= 0:
        raise ConfigError("config.reward.video_form='progress' needs frame features: pass "
                          "feature_dim > 0")
    if plan.reads_start and feature_dim <= 0:
        raise ConfigError("config.reward.learned > 0 needs frame features: pass feature_dim > 0")
    fb = a.fb
    return AgentDef(
        obs_type=a.obs, obs_shape=obs_shape, action_dim=int(action_dim),
        feature_dim=int(feature_dim), latent_dim=int(latent_dim),
        hidden=tuple(a.hidden), lr=float(a.lr), discount=float(a.discount), tau=float(a.tau),
        init_temperature=float(a.init_temperature),
        target_entropy=-float(a.target_entropy_scale) * action_dim,
        batch_size=int(a.batch_size), updates_per_call=int(a.updates_per_call),
        encoder_channels=tuple(a.get("encoder_channels", (32, 32, 32, 32))),
        encoder_feature_dim=int(a.get("encoder_feature_dim", 50)),
        aug_pad=int(a.get("aug_pad", 4)),
        use_fb=use_fb, z_dim=int(fb.z_dim), fb_hidden=tuple(fb.hidden), fb_lr=float(fb.lr),
        fb_discount=float(fb.discount), fb_tau=float(fb.tau),
        ortho_weight=float(fb.ortho_weight), z_mix_ratio=float(fb.z_mix_ratio),
        fb_actor_noise=float(fb.get("actor_noise", 0.2)),
        fb_actor_noise_clip=float(fb.get("actor_noise_clip", 0.3)),
        reward_terms=tuple(active), reward_normalize=bool(config.reward.normalize),
        video_metric=str(config.reward.get("video_metric", "cosine")),
        video_form=str(video_form), video_progress_temperature=temperature,
        video_progress_gate=gate,
        frame_form=str(frame_form),
        learned_hidden=tuple(r.get("learned_hidden", (256, 256))),
        learned_lr=float(r.get("learned_lr", 3e-4)),
        learned_domain_weight=float(r.get("learned_domain_weight", 3.0)))


def init_agent_state(defn, key):
    """Initial AgentState for `defn` (params, targets, optimizer states, reward stats).

    Jitted and compiled at XLA optimisation level 0 (it runs once; this cuts its
    compile time ~3x on CPU), one compile per (AgentDef, key type).
    """
    return _compiled_init(defn, tuple(key.shape), key.dtype)(key)


@functools.lru_cache(maxsize=32)
def _compiled_init(defn, key_shape, key_dtype):
    fn = jax.jit(functools.partial(init_agent_state_pure, defn))
    abstract = jax.ShapeDtypeStruct(key_shape, key_dtype)
    return fn.lower(abstract).compile({"xla_backend_optimization_level": 0})


def init_agent_state_pure(defn, key):
    """Pure (traceable, vmappable over keys) version of init_agent_state.

    Initial AgentState for `defn` (params, targets, optimizer states, reward stats)."""
    k_enc, k_q, k_pi, k_f, k_b, k_fpi = jax.random.split(key, 6)
    k_learned = jax.random.fold_in(key, 7)
    obs = jnp.zeros((1,) + defn.obs_shape, jnp.uint8 if defn.pixels else jnp.float32)
    act = jnp.zeros((1, defn.action_dim))
    enc_p = defn.encoder_module().init(k_enc, obs).get("params", {})
    h = jnp.zeros((1, defn.feature_size))
    q_p = defn.critic_module().init(k_q, h, act)["params"]
    pi_p = defn.actor_module().init(k_pi, h)["params"]
    tx = defn.optimizer(defn.lr)
    critic_p = {"encoder": enc_p, "q": q_p}
    critic = {"params": critic_p, "target": jax.tree.map(jnp.copy, critic_p),
              "opt": tx.init(critic_p)}
    actor = {"params": pi_p, "opt": tx.init(pi_p)}
    temp_p = {"log_alpha": jnp.asarray(jnp.log(defn.init_temperature), jnp.float32)}
    temp = {"params": temp_p, "opt": tx.init(temp_p)}
    fb = {}
    if defn.use_fb:
        z = jnp.zeros((1, defn.z_dim))
        phi = jnp.zeros((1, defn.feature_dim))
        fb_p = {"F": defn.forward_module().init(k_f, h, act, z)["params"],
                "B": defn.backward_module().init(k_b, phi)["params"],
                "pi": defn.fb_actor_module().init(k_fpi, h, z)["params"]}
        ftx = defn.optimizer(defn.fb_lr)
        fb = {"params": fb_p,
              "target": {"F": jax.tree.map(jnp.copy, fb_p["F"]),
                         "B": jax.tree.map(jnp.copy, fb_p["B"])},
              "opt": {"FB": ftx.init({"F": fb_p["F"], "B": fb_p["B"]}),
                      "pi": ftx.init(fb_p["pi"])}}
    reward_model = {}
    if defn.use_learned:
        lp = learned_lib.init(defn.learned_hidden, defn.feature_dim, k_learned)
        reward_model = {"params": lp, "opt": learned_lib.optimizer(defn.learned_lr).init(lp)}
    stats = {name: {"count": jnp.zeros((), jnp.float32), "mean": jnp.zeros((), jnp.float32),
                    "var": jnp.ones((), jnp.float32)} for name, _ in defn.reward_terms}
    return AgentState(step=jnp.zeros((), jnp.int32), critic=critic, actor=actor, temp=temp,
                      fb=fb, reward_model=reward_model, reward_stats=stats, defn=defn)


def create_agent_state(config, obs_dim, action_dim, feature_dim, latent_dim, key, plan=None):
    """AgentState from the full config (sections agent, reward) and the data dims.

    obs_dim: int (state obs) or (H, W, C) (pixel obs); feature_dim: P, dim of frame
    features phi (B's input); latent_dim: D, dim of a flattened window latent.
    """
    defn = agent_def_from_config(config, obs_dim, action_dim, feature_dim, latent_dim, plan)
    return init_agent_state(defn, key)
