"""vidrl_jax on Meta-World: the default (CPU-feasible) config and named variants.

    python -m experiments.run --config=configs/metaworld.py[:VARIANTS] --workdir=DIR

VARIANTS is a comma-separated list applied in order, e.g. `smoke`, `gpu`,
`smoke,sparse`. Size variants: `smoke` (tiny, minutes on 2 cores), default
(CPU-feasible), `gpu`, `tpu` (full size). Reward variants (baselines and
ablations, see `REWARD_VARIANTS`): `genreward`, `genreward+sparse`, `genreward+dense`,
`sparse`, `dense`, `video`, `frame`, `progress_net` (the progress net alone),
`progress_net+sparse`, `progress_net+dense`, `learned` (the online discriminator alone),
`learned+sparse`, `learned+dense`, `learned+frame`, `likelihood`, `roboclip`. Every field can be
overridden: `--config.env.task=drawer-open-v3`.
"""
import ml_collections

# Each reward variant only sets `reward.*` weights: variants differ in config alone.
_TERMS = ("env", "video", "frame", "learned", "likelihood", "roboclip", "progress_net")
REWARD_VARIANTS = {
    name: dict(zip(_TERMS, weights))
    for name, weights in [
        ("genreward", ("none", 1.0, 1.0, 0.0, 0.0, 0.0, 0.0)),
        ("genreward+sparse", ("sparse", 1.0, 1.0, 0.0, 0.0, 0.0, 0.0)),
        ("genreward+dense", ("dense", 1.0, 1.0, 0.0, 0.0, 0.0, 0.0)),
        ("sparse", ("sparse", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)),
        ("dense", ("dense", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)),
        ("video", ("none", 1.0, 0.0, 0.0, 0.0, 0.0, 0.0)),
        ("frame", ("none", 0.0, 1.0, 0.0, 0.0, 0.0, 0.0)),
        ("learned", ("none", 0.0, 0.0, 1.0, 0.0, 0.0, 0.0)),
        ("learned+sparse", ("sparse", 0.0, 0.0, 1.0, 0.0, 0.0, 0.0)),
        ("learned+dense", ("dense", 0.0, 0.0, 1.0, 0.0, 0.0, 0.0)),
        ("learned+frame", ("none", 0.0, 1.0, 1.0, 0.0, 0.0, 0.0)),
        ("progress_net", ("none", 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)),
        ("progress_net+sparse", ("sparse", 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)),
        ("progress_net+dense", ("dense", 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)),
        ("likelihood", ("none", 0.0, 0.0, 0.0, 1.0, 0.0, 0.0)),
        ("roboclip", ("none", 0.0, 0.0, 0.0, 0.0, 1.0, 0.0)),
    ]
}

SIZE_VARIANTS = ("default", "smoke", "gpu", "tpu")


def _env():
    return ml_collections.ConfigDict(dict(
        task="door-open-v3",
        camera="corner2",       # corner* cameras are rotated upright by the wrapper
        size=32,                # rendered frames are size x size x 3 uint8
        fast_render=True,       # shadows and MSAA off (~6x faster software rendering)
        action_repeat=1,
        max_episode_steps=200,  # time limit (truncation, not termination)
        num_workers=2,          # env worker processes
    ))


def _demos():
    return ml_collections.ConfigDict(dict(
        # Tasks whose expert demos train the video models ("pretraining" set).
        tasks=("door-open-v3", "drawer-open-v3", "button-press-topdown-v3",
               "window-open-v3", "drawer-close-v3", "door-close-v3",
               "reach-v3", "push-v3", "window-close-v3", "handle-press-v3"),
        episodes_per_task=20,
        steps_after_success=20,  # keep recording this many steps after success
        episodes_per_shard=16,
        num_workers=2,
        seed=0,
    ))


def _vae():
    return ml_collections.ConfigDict(dict(
        channels=(32, 64),           # encoder width per level
        latent_channels=8,
        patch_size=2,                # space-to-depth patch embedding (cheap full-res layers)
        spatial_downsample=4,        # patch_size * 2 ** (len(channels) - 1)
        temporal_downsample=4,       # causal: 1 + (T-1)/4 latent frames
        kl_weight=1e-6,
        dtype="float32",             # compute dtype: float32 | bfloat16 (params stay float32)
        lr=5e-4,
        batch_size=8,
        clip_length=17,              # 1 + 4k frames
        frame_stride=2,
        # 500 steps (held-out PSNR 23.9 dB) reconstruct the static scene but not the arm
        # or the door, so decoded goal videos showed no task; 3000: ~25-30 min on 2 cores
        steps=3000,
        eval_every=500,
        checkpoint_every=500,
        log_every=50,
    ))


def _diffusion():
    return ml_collections.ConfigDict(dict(
        channels=(32, 64),           # 2.9 train steps/s on 2 busy cores (3,000 steps: ~18 min)
        num_res_blocks=1,
        attention_levels=(1,),       # spatial attention at these (low-res) levels
        heads=4,
        text_dim=64,
        # Instruction embedding when clip.path == '': a learned row per task (table) or
        # learned embeddings of the instruction's words (words: the setting for a task
        # left out of training; on the seen task the table did as well or better,
        # docs/rewards.md, reward quality).
        text="table",                # table | words
        schedule="cosine",           # linear | cosine
        prediction="v",              # eps | v
        # What is denoised: residual = VAE latents minus those of the first frame held
        # still (the motion; the static scene is given), or the latents themselves.
        target="residual",           # residual | latents
        timesteps=1000,
        cond_dropout=0.1,            # condition dropout for classifier-free guidance
        dtype="float32",             # compute dtype: float32 | bfloat16 (params stay float32)
        lr=2e-4,
        ema_decay=0.999,
        batch_size=8,
        steps=3000,                  # held-out v-loss 0.40 at 1000, 0.16 at 2000, 0.12 at 3000
        eval_every=500,
        checkpoint_every=500,
        log_every=50,
        init_from="",                # checkpoint dir to finetune from
        finetune_steps=0,            # extra steps on the target task only
        holdout_task=False,          # exclude env.task from training (unseen-task mode)
        clip_length=17,              # frames of a training video: a whole demo resampled
        views_per_episode=8,         # resampled videos per demo (random end after success)
        val_fraction=0.1,            # held-out demos per task (held-out denoising loss)
        sample_steps=20,             # DDIM steps of the sample videos logged during training
    ))


def _goal():
    return ml_collections.ConfigDict(dict(
        seed=0,                      # env seed of the episode whose first frame conditions the goal
        sampling_steps=50,
        eta=0.0,
        guidance_scale=10.0,         # swept 1.5-15 on door-open (docs/rewards.md)
        # Goal videos sampled; the sampled-latents goal embedding is their mean (door-open,
        # generated goal: noisy success/fail AUC 0.69 with 1 video, 0.78 with 8)
        num_videos=8,
    ))


def _judge():
    # The goal-video judge (vidrl_jax/rewards/judge.py; evaluation only, never a reward):
    # a CNN trained on real frames of the task's expert, run by the goal stage, which
    # writes "k of N goal videos show the task done" into goal/metrics.json.
    return ml_collections.ConfigDict(dict(
        episodes=20,                 # expert episodes it trains on (0 = no judge)
        steps=1500,
    ))


def _clip():
    return ml_collections.ConfigDict(dict(
        path="",                     # local CLIP dir (Flax or PyTorch weights + tokenizer); '' = no
                                     # CLIP (select falls back to the last frame). PyTorch -> Flax once:
                                     # python -m experiments.convert_clip --src=DIR --dst=DIR
        prompt_mode="instruction",   # instruction | generic | both
        generic_prompts=("robot arm grasping an object",
                         "robot arm completing the task",
                         "a robot finishing a manipulation task"),
        last_k=0,                    # restrict goal frame to the last k frames (0 = all)
        smooth=1,                    # moving-average window over frame scores
        batch_size=64,
    ))


def _agent():
    return ml_collections.ConfigDict(dict(
        obs="state",                 # state | pixels
        hidden=(256, 256),
        lr=3e-4,
        discount=0.99,
        tau=0.005,
        init_temperature=0.1,
        target_entropy_scale=1.0,    # target entropy = -scale * action_dim
        batch_size=256,
        updates_per_call=10,         # K updates fused with lax.scan
        utd=1.0,                     # updates per env step
        replay_capacity=100_000,
        prefill_steps=2000,          # random-policy steps before learning
        total_steps=100_000,         # env steps
        eval_every=10_000,
        eval_episodes=10,
        checkpoint_every=10_000,
        log_every=1000,
        # Step the envs (workers) while the fused train call for the previous step
        # computes. The policy then acts with parameters one step stale; replay
        # contents, update count and keys are the same as serial, and a run stays
        # reproducible (episode boundaries are synchronous). False = strictly serial:
        # the CPU default, because on 2 cores the workers and XLA then fight for the
        # same cores (genreward 27 vs 22 env steps/s serial vs overlapped;
        # docs/benchmarks.md); the gpu/tpu variants overlap (the device computes, not the CPU).
        overlap_env=False,
        encoder_channels=(32, 32, 32, 32),  # pixel obs: conv encoder (shared by critics)
        encoder_feature_dim=50,
        aug_pad=4,                   # pixel obs: random-shift augmentation (pixels)
        fb=ml_collections.ConfigDict(dict(
            z_dim=32,
            # 64x64: FB's FLOPs per update 1,749 (256x256) -> 597 (128x128) -> ~240 M; the
            # fused update 0.43x -> 0.54x the SAC scan, genreward 0.285x -> 0.355x the render
            # ceiling. A/B at 20k env steps, 3 seeds, genreward (experiments/studies/ab_fb64.sh,
            # experiments/results/ab_fb64.csv; docs/benchmarks.md): drawer-close 0.90 +- 0.14
            # vs 0.63 +- 0.29 with 128x128 (0.80 +- 0.16 at stride 1), door-open 0.00 both.
            hidden=(64, 64),
            lr=1e-4,
            discount=0.98,
            tau=0.01,
            ortho_weight=1.0,
            z_mix_ratio=0.5,         # share of z taken from B of replay states
            actor_noise=0.2,         # pi_z smoothing noise std (clipped at actor_noise_clip)
            actor_noise_clip=0.3,
        )),
    ))


def _reward():
    return ml_collections.ConfigDict(dict(
        env="none",                  # none | sparse | dense
        video=1.0,                   # alpha: video-level weight
        frame=1.0,                   # beta: frame-level (FB) weight
        # The learned reward (vidrl_jax/rewards/learned.py): a goal discriminator on
        # Δφ = φ(frame) − φ(episode's first frame), trained in the fused step on the goal
        # videos (label: their time) against the agent's replay frames (label 0); pays its
        # logit, standardised by its running statistics. Its features are trained not to
        # tell generated frames from real ones (a domain head through a reversed
        # gradient, weighted learned_domain_weight).
        learned=0.0,
        learned_hidden=(256, 256),
        learned_lr=3e-4,
        learned_domain_weight=3.0,
        # The progress net (vidrl_jax/rewards/progress_net.py): a small CNN trained
        # before RL on the goal videos alone (a frame's label: its time along its video),
        # frozen; pays its logit of the agent's frame, standardised by the goal frames'.
        progress_net=0.0,
        progress_net_steps=2000,
        likelihood=0.0,              # VIPER-style diffusion likelihood weight
        roboclip=0.0,                # CLIP text-video similarity at episode end
        # Each term (r - running mean) / running std. On drawer-close (docs/results.md) genreward succeeded 0.92 +- 0.12 unnormalised vs 0.33 +- 0.31 normalised.
        normalize=False,
        # The video reward (vidrl_jax/rewards/video_level.py): the agent's video so far
        # (episode) or its last `window` frames (last, GenReward's), resampled to the goal
        # video's length, against the goal video; embeddings centred on their first
        # frame held still; metric distance or cosine (GenReward's). The defaults are
        # the measured best (docs/rewards.md).
        video_window="episode",      # episode | last
        video_metric="distance",     # distance | cosine
        video_centre=True,
        window=16,                   # W of video_window=last (frames)
        # Re-encode the agent's video every this many steps (between, the last score
        # holds). 2: genreward 0.254x -> 0.285x the render ceiling, no success lost in
        # the A/B (experiments/studies/ab_stride.sh, 3 seeds, 20k steps; docs/benchmarks.md).
        video_stride=2,
        # What the video term pays at step t, with Φ_t the score above of the episode so
        # far (vidrl_jax/rewards/terms.py): score = Φ_t (a function of the history paid to
        # a Markov critic); shaped = γ·Φ_{t+1} - Φ_t (potential-based shaping, γ =
        # agent.discount; Φ_t is stored as one replay column: it keeps the optimal
        # policy of the other terms, and alone cannot teach, since bootstrapped through
        # the time limit its return from any state is -Φ_t whatever the actions;
        # docs/rewards.md); progress = how far along
        # the goal video the current frame stands, in [0, 1] (softmax over its VAE
        # frame latent's distances to the goal video's frames; needs frame_features=vae).
        # progress (at τ 0.1) and frame_form=bsim are the defaults, chosen from the 50k
        # table (docs/rewards.md): beside the dense reward they met "≥ dense" on
        # drawer-close and handle-press where score + fz missed it; alone they scored as
        # score + fz on handle-press, window-open and door-open (drawer-close: 0.73 against
        # 0.87); every term stays bounded, and the loop encodes one frame per step instead
        # of the 17-frame video.
        video_form="progress",       # score | shaped | progress
        video_progress_temperature=0.1,  # progress: softmax temperature (d² / goal span²)
        # progress: × exp(-d_min/σ), d_min the new frame's distance (d² / goal span²) to
        # the nearest goal frame, so a pose off the goal video's path earns little
        # (vidrl_jax/rewards/video_level.frame_progress); 0 = no gate.
        video_progress_gate=0.0,
        # The goal video's embedding: its decoded frames re-encoded (decoded), or the
        # latents the diffusion model sampled (sampled: their mean over goal.num_videos,
        # no decoder round trip); expert: the oracle ablation, a real expert demo of the
        # task as the goal video (separates the reward's design from the video model).
        video_goal="sampled",        # sampled | decoded | expert
        # φ, FB's frame input: the VAE latent of one frame, or the unit-norm CLIP image
        # embedding (needs clip.path; ~1 frame/s per core at 224 px on CPU, an accelerator's job).
        frame_features="vae",        # vae | clip
        # What the frame term pays (z_g = B(φ(goal frame))): fz = F(s,a,z_g)ᵀz_g (GenReward's;
        # = Fᵀ B(g), z_g being B(g)), a successor-measure value whose scale grows as FB
        # trains; fz_scaled = the same divided by its running std (reward/frame_scale,
        # not centred); bsim = cos(B(φ(s')), z_g), bounded in [-1, 1].
        frame_form="bsim",           # fz | fz_scaled | bsim
    ))


def get_config(arg=None):
    """Returns the config for `arg`, a comma-separated list of variants."""
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.seeds = 1                      # independent agents trained in one process (vmapped)
    # Multi-host: jax.distributed.initialize(); empty fields come from the usual
    # environment variables / cluster auto-detection (TPU pods, SLURM, ...).
    c.distributed = ml_collections.ConfigDict(dict(
        enabled=False, coordinator_address="", num_processes=0, process_id=-1))
    c.env = _env()
    c.demos = _demos()
    c.vae = _vae()
    c.diffusion = _diffusion()
    c.goal = _goal()
    c.judge = _judge()
    c.clip = _clip()
    c.agent = _agent()
    c.reward = _reward()
    c.variants = arg or "default"
    for name in (arg or "default").split(","):
        _apply_variant(c, name.strip())
    return c


def _apply_variant(c, name):
    if name in ("", "default"):
        return
    if name in REWARD_VARIANTS:
        c.reward.update(REWARD_VARIANTS[name])
    elif name == "smoke":
        c.env.max_episode_steps = 100
        c.demos.tasks = ("door-open-v3", "drawer-open-v3")
        c.demos.episodes_per_task = 3
        c.demos.steps_after_success = 5
        c.demos.episodes_per_shard = 2
        c.vae.update(channels=(8, 16), latent_channels=4, batch_size=2,
                     clip_length=9, steps=30, eval_every=15, checkpoint_every=15,
                     log_every=5)
        c.diffusion.update(channels=(16, 32), heads=2, text_dim=16, batch_size=2,
                           steps=30, eval_every=15, checkpoint_every=15, log_every=5,
                           clip_length=9, views_per_episode=2, sample_steps=4)
        c.goal.sampling_steps = 5
        c.judge.update(episodes=1, steps=5)
        c.agent.update(hidden=(64, 64), batch_size=32, updates_per_call=5,
                       replay_capacity=5000, prefill_steps=200, total_steps=600,
                       eval_every=300, eval_episodes=2, checkpoint_every=200,
                       log_every=100)
        c.agent.fb.update(z_dim=8, hidden=(64, 64))
        c.reward.window = 8
    elif name in ("gpu", "tpu"):
        c.env.size = 64
        c.env.num_workers = 16
        c.demos.episodes_per_task = 50
        c.demos.num_workers = 16
        c.vae.update(channels=(64, 128, 256), latent_channels=8, patch_size=1,
                     batch_size=32, steps=20_000, dtype="bfloat16")
        c.diffusion.update(channels=(128, 256, 256), attention_levels=(1, 2), heads=8,
                           text_dim=128, batch_size=32, steps=30_000, dtype="bfloat16")
        c.agent.update(batch_size=1024, updates_per_call=100, overlap_env=True,
                       replay_capacity=1_000_000, prefill_steps=10_000,
                       total_steps=1_000_000, eval_every=100_000,
                       checkpoint_every=100_000, log_every=10_000)
        c.agent.fb.update(z_dim=64, hidden=(1024, 1024))
    else:
        from vidrl_jax.errors import ConfigError
        raise ConfigError(
            f"unknown config variant {name!r}; valid: "
            f"{', '.join(SIZE_VARIANTS + tuple(REWARD_VARIANTS))}")
