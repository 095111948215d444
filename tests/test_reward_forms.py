"""reward.video_form (score | shaped | progress) and reward.frame_form (fz | fz_scaled |
bsim): each computes what it claims on constructed inputs, the host side stores the
shaping potential so that returns telescope (also with a video stride), the fused step
runs with every form, and config_check refuses bad values in one line."""
import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs import metaworld
from vidrl_jax import config_check
from vidrl_jax.agents import fb as fb_lib
from vidrl_jax.agents.state import AgentDef, init_agent_state
from vidrl_jax.agents.train_step import jit_train_step, rewards_part
from vidrl_jax.data import replay as rp
from vidrl_jax.errors import ConfigError
from vidrl_jax.rewards import terms
from vidrl_jax.rewards.video_level import frame_progress, video_reward
from vidrl_jax.train.agent import AgentRun
from vidrl_jax.train.reward_inputs import FrameWindows, RewardEncoders

O, A, P, D, B, T = 6, 2, 5, 7, 8, 6
GAMMA = 0.9
DEFN = AgentDef(obs_type="state", obs_shape=(O,), action_dim=A, feature_dim=P, latent_dim=D,
                hidden=(16, 16), batch_size=B, updates_per_call=2, use_fb=True, z_dim=4,
                fb_hidden=(16, 16), reward_terms=(("video", 1.0), ("frame", 1.0)),
                discount=GAMMA, video_metric="distance", target_entropy=-2.0)
O0 = {"xla_backend_optimization_level": 0}
rng = np.random.default_rng(0)
GOAL_FRAMES = (np.arange(T, dtype=np.float32)[:, None] * np.eye(P, dtype=np.float32)[0]
               + 0.01 * rng.normal(size=(T, P)).astype(np.float32))   # a straight path
GOAL = {"video_latent": jnp.linspace(-1.0, 1.0, D), "frame_feature": jnp.linspace(0.5, -0.5, P),
        "frame_latents": jnp.asarray(GOAL_FRAMES)}


def _batch(n=B, extra=(terms.POTENTIAL_COLUMN,)):
    specs = rp.column_specs((O,), A, P, D, extra=extra)
    b = {k: rng.normal(size=(n,) + s).astype(np.float32) for k, (s, _) in specs.items()}
    b["action"] = np.tanh(b["action"])
    b["terminal"] = np.zeros(n, np.float32)
    return b


def _terms(**forms):
    return terms.make_terms(dataclasses.replace(DEFN, **forms))


# ----------------------------------------------------------------------------- video forms
def test_shaped_is_gamma_next_potential_minus_previous():
    b = _batch()
    _, fn = _terms(video_form="shaped")["video"]
    phi_next = video_reward(GOAL["video_latent"], b["window_latent"], "distance")
    np.testing.assert_allclose(fn({}, b, GOAL), GAMMA * phi_next - b[terms.POTENTIAL_COLUMN],
                               rtol=1e-6, atol=1e-6)
    _, score = _terms(video_form="score")["video"]
    np.testing.assert_allclose(score({}, b, GOAL), phi_next, rtol=1e-6)


class _Envs:
    """Two envs whose frame t is all t (state obs: zeros)."""
    n = 2

    def reset(self, seed):
        self.t = 0
        return np.zeros((self.n, 39), np.float32), {"frame": self._frame()}

    def _frame(self):
        return np.full((self.n, 2, 2, 3), self.t * 10 + np.arange(self.n)[:, None, None, None],
                       np.uint8)

    def step(self, action):
        self.t += 1
        info = {"frame": self._frame(), "success": np.zeros(self.n)}
        return (np.zeros((self.n, 39), np.float32), np.zeros(self.n), np.zeros(self.n),
                np.zeros(self.n), info)


class _Learner:
    specs = {terms.POTENTIAL_COLUMN: ((), jnp.float32)}

    def reset_seeds(self, episode, offset):
        return [0, 1]


def _host_run(stride, length=7, centre=True):
    """AgentRun.run_episode with fake envs and a VAE-free RewardEncoders (the window
    latent of a video: its frames' mean pixel values)."""
    enc = object.__new__(RewardEncoders)
    enc.latent_dim, enc.feature_dim, enc.centre, enc.likelihood_fn = D, 0, centre, None
    enc.video_metric, enc._score = "distance", jax.jit(video_reward, static_argnums=2)
    enc.clip_len = D
    enc.plan = terms.resolve(ml_collections.ConfigDict({"env": "none", "video": 1.0,
                                                        "video_form": "shaped"}))
    enc._embed = lambda v: jnp.asarray(v.reshape(v.shape[:2] + (-1,)).mean(-1), jnp.float32)
    enc.goal = {"video_latent": jnp.linspace(1.0, 5.0, D)}
    run = object.__new__(AgentRun)
    run.config = ml_collections.ConfigDict({"agent": {"obs": "state"}})
    run.envs, run.encoders, run.learner = _Envs(), enc, _Learner()
    run.windows = FrameWindows("episode", 4, D, length)
    run.episode_len, run.stride = length, stride
    trs, _ = run.run_episode(0, 0, lambda obs, t: np.zeros((2, 4), np.float32))
    return enc, trs


@pytest.mark.parametrize("stride", [1, 3])
def test_host_potential_is_the_previous_steps_score_and_returns_telescope(stride):
    enc, trs = _host_run(stride)
    score = lambda latent: np.asarray(enc.potential(jnp.asarray(latent)))  # noqa: E731
    # t = 0: the score of the 1-frame episode (frame 0 held still: centred latent 0)
    first = enc.stored(enc.window(np.repeat(_Envs().reset(0)[1]["frame"][:, None], D, 1)))
    np.testing.assert_allclose(trs[0][terms.POTENTIAL_COLUMN], score(first), atol=1e-6)
    np.testing.assert_allclose(trs[0][terms.POTENTIAL_COLUMN], -1.0, atol=1e-6)
    for t in range(1, len(trs)):
        np.testing.assert_allclose(trs[t][terms.POTENTIAL_COLUMN],
                                   score(trs[t - 1]["window_latent"]), atol=1e-6)
        if t % stride and t != len(trs) - 1:   # the latent holds between refreshes
            np.testing.assert_array_equal(trs[t]["window_latent"], trs[t - 1]["window_latent"])
    # the fused step's shaped term on these columns: its discounted sum telescopes
    _, fn = _terms(video_form="shaped")["video"]
    goal = {"video_latent": enc.goal["video_latent"]}
    r = [np.asarray(fn({}, {k: jnp.asarray(v) for k, v in tr.items()}, goal)) for tr in trs]
    ret = sum(GAMMA ** t * r_t for t, r_t in enumerate(r))
    final, phi0 = score(trs[-1]["window_latent"]), trs[0][terms.POTENTIAL_COLUMN]
    np.testing.assert_allclose(ret, GAMMA ** len(trs) * final - phi0, rtol=1e-5, atol=1e-5)


def test_progress_locates_the_frame_on_the_goal_video_and_is_bounded():
    for i in range(T):
        p = frame_progress(GOAL_FRAMES, GOAL_FRAMES[i][None], temperature=0.005)
        np.testing.assert_allclose(p, [i / (T - 1)], atol=0.02)
    far = 100.0 * rng.normal(size=(64, P)).astype(np.float32)
    p = np.asarray(frame_progress(GOAL_FRAMES, far))
    assert p.shape == (64,) and np.all((p >= 0) & (p <= 1))
    # monotone along the path, and the term reads the replay's next_phi
    path = np.linspace(0, T - 1, 20)[:, None] * np.eye(P, dtype=np.float32)[0]
    assert np.all(np.diff(np.asarray(frame_progress(GOAL_FRAMES, path))) > -1e-6)
    b = _batch()
    b["next_phi"] = GOAL_FRAMES[[0, 2, 5, 1, 3, 4, 0, 5]]
    _, fn = _terms(video_form="progress", video_progress_temperature=0.005)["video"]
    np.testing.assert_allclose(fn({}, b, GOAL), np.array([0, 2, 5, 1, 3, 4, 0, 5]) / (T - 1),
                               atol=0.02)


def test_progress_gate_keeps_the_path_and_drops_poses_off_it():
    """video_progress_gate σ: on the goal video's path progress is unchanged (d_min = 0);
    a pose off the path whose nearest goal frame is the last (ungated: ≈ 1, what an
    agent on door-open-v3 learned to hold) earns ≈ exp(-d_min/σ)."""
    on = GOAL_FRAMES[[1, 3, 5]]
    np.testing.assert_allclose(frame_progress(GOAL_FRAMES, on, 0.005, gate=0.1),
                               frame_progress(GOAL_FRAMES, on, 0.005), atol=0.02)
    off = GOAL_FRAMES[-1:] + (T - 1) * 0.5 * np.eye(P, dtype=np.float32)[1]  # d_min ≈ 0.25
    ungated = float(frame_progress(GOAL_FRAMES, off, 0.005)[0])
    gated = float(frame_progress(GOAL_FRAMES, off, 0.005, gate=0.1)[0])
    assert ungated > 0.95
    np.testing.assert_allclose(gated, ungated * np.exp(-0.25 / 0.1), rtol=0.05)
    b = _batch()
    b["next_phi"] = np.concatenate([on, off])
    _, fn = _terms(video_form="progress", video_progress_temperature=0.005,
                   video_progress_gate=0.1)["video"]
    np.testing.assert_allclose(fn({}, b, GOAL), frame_progress(
        GOAL_FRAMES, b["next_phi"], 0.005, gate=0.1), atol=1e-6)


def test_negative_progress_gate_is_refused_naming_the_field():
    c = metaworld.get_config()
    c.reward.video_progress_gate = -0.1
    with pytest.raises(ConfigError, match="reward.video_progress_gate=-0.1 must be >= 0"):
        config_check.validate(c)
    from vidrl_jax.agents.state import agent_def_from_config
    with pytest.raises(ConfigError, match="video_progress_gate"):
        agent_def_from_config(c, 39, 4, P, D)


# ----------------------------------------------------------------------------- frame forms
@pytest.fixture(scope="module")
def state():
    return init_agent_state(DEFN, jax.random.key(0))


def test_bsim_is_a_cosine_and_one_at_the_goal(state):
    b = _batch()
    params = state.fb["params"]
    s = np.asarray(fb_lib.frame_bsim(DEFN, params, jnp.asarray(b["next_phi"]),
                                     GOAL["frame_feature"]))
    assert s.shape == (B,) and np.all((s >= -1) & (s <= 1))
    at_goal = fb_lib.frame_bsim(DEFN, params, GOAL["frame_feature"][None],
                                GOAL["frame_feature"])
    np.testing.assert_allclose(at_goal, [1.0], atol=1e-5)


def test_fz_scaled_is_fz_over_its_running_std_and_keeps_the_metrics(state):
    b = {k: jnp.asarray(v) for k, v in _batch().items()}
    out = {}
    for form in ("fz", "fz_scaled", "bsim"):
        s = state.replace(defn=dataclasses.replace(DEFN, frame_form=form))
        out[form] = rewards_part(s, b, GOAL)
    _, fz, st_fz, m_fz = out["fz"]
    _, scaled, st_sc, m_sc = out["fz_scaled"]
    scale = m_fz["reward/frame_scale"]
    np.testing.assert_allclose(scale, np.sqrt(st_fz["frame"]["var"] + 1e-8), rtol=1e-6)
    np.testing.assert_allclose(scaled["frame"], fz["frame"] / scale, rtol=1e-5)
    np.testing.assert_allclose(m_sc["reward/frame_scale"], scale, rtol=1e-6)  # raw stats
    np.testing.assert_allclose(st_sc["frame"]["mean"], st_fz["frame"]["mean"], rtol=1e-6)
    np.testing.assert_allclose(m_sc["reward/frame"], np.mean(fz["frame"]) / scale, rtol=1e-5)
    np.testing.assert_allclose(m_sc["reward/frame_raw"], np.mean(fz["frame"]), rtol=1e-5)
    for _, per_term, _, m in out.values():
        assert {"reward/frame", "reward/frame_scale", "reward/video",
                "reward/video_scale"} <= set(m)
    assert np.all(np.abs(np.asarray(out["bsim"][1]["frame"])) <= 1)


# ----------------------------------------------------------------------------- fused step
@pytest.mark.parametrize("video_form,frame_form", [("shaped", "fz_scaled"),
                                                   ("progress", "bsim")])
def test_fused_step_runs_with_each_form(video_form, frame_form):
    defn = dataclasses.replace(DEFN, video_form=video_form, frame_form=frame_form)
    extra = (terms.POTENTIAL_COLUMN,) if video_form == "shaped" else ()
    specs = rp.column_specs((O,), A, P, D, extra=extra)
    replay = rp.add(rp.create_replay(32, specs), _batch(32, extra))
    s0 = init_agent_state(defn, jax.random.key(0))
    key = jax.random.key(1)
    s1, m = jit_train_step.lower(s0, replay, GOAL, key).compile(O0)(s0, replay, GOAL, key)
    assert int(s1.step) == defn.updates_per_call
    for k in ("reward/video", "reward/video_scale", "reward/frame", "reward/frame_scale",
              "critic/loss"):
        assert np.all(np.isfinite(np.asarray(m[k]))), k
    if video_form == "progress":
        assert np.all((np.asarray(m["reward/video"]) >= 0) & (np.asarray(m["reward/video"]) <= 1))
    if frame_form == "bsim":
        assert np.all(np.abs(np.asarray(m["reward/frame"])) <= 1)


# ----------------------------------------------------------------------------- config
def test_config_fields_reach_the_agent_and_the_replay_columns():
    c = metaworld.get_config()
    assert (c.reward.video_form, c.reward.frame_form) == ("progress", "bsim")
    assert c.reward.video_progress_temperature == 0.1
    assert c.reward.video_progress_gate == 0.0
    assert terms.POTENTIAL_COLUMN not in terms.extra_columns(c.reward)
    c.reward.video_form = "shaped"
    assert terms.POTENTIAL_COLUMN in terms.extra_columns(c.reward)
    c.reward.video = 0.0
    assert terms.POTENTIAL_COLUMN not in terms.extra_columns(c.reward)  # video term off
    from vidrl_jax.agents.state import agent_def_from_config
    c = metaworld.get_config()
    c.reward.update(video_form="progress", frame_form="bsim")
    d = agent_def_from_config(c, 39, 4, P, D)
    assert (d.video_form, d.frame_form, d.discount) == ("progress", "bsim", c.agent.discount)


@pytest.mark.parametrize("field,value,words", [
    ("video_form", "potential", ["reward.video_form", "score", "shaped", "progress"]),
    ("frame_form", "fb", ["reward.frame_form", "fz", "fz_scaled", "bsim"]),
])
def test_bad_form_is_refused_in_one_line_naming_field_and_values(field, value, words):
    c = metaworld.get_config()
    c.reward[field] = value
    with pytest.raises(ConfigError) as e:
        config_check.validate(c)
    msg = str(e.value)
    assert "\n" not in msg and value in msg and all(w in msg for w in words), msg


def test_progress_with_clip_features_is_refused():
    c = metaworld.get_config()
    c.reward.update(video_form="progress", frame_features="clip")
    with pytest.raises(ConfigError, match="video_form=progress needs reward.frame_features=vae"):
        config_check.validate(c)
    for form in ("score", "shaped", "progress"):
        c = metaworld.get_config()
        c.reward.video_form = form
        config_check.validate(c)


def test_reward_encoders_goal_frame_latents_and_potential(tmp_path):
    """video_form=progress: goal["frame_latents"] is φ of each decoded goal frame, and a
    frame equal to goal frame i stands at ≈ i/(T-1), with no window column; shaped:
    potential() is the score the fused step computes from the stored window latent."""
    from experiments.benches.pipeline import write_reward_inputs
    from vidrl_jax.stages import StageContext
    from vidrl_jax.utils.logging import MetricLogger

    config = metaworld.get_config("smoke")
    config.env.size = 16
    config.vae.update(channels=(4, 8), latent_channels=2)
    config.reward.update(video_form="progress", video_progress_temperature=0.002)
    write_reward_inputs(config, str(tmp_path))
    logger = MetricLogger(str(tmp_path), use_tensorboard=False, use_jsonl=False)
    enc = RewardEncoders(config, StageContext(str(tmp_path), str(tmp_path / "agent"), logger))
    frames = enc.goal_frames
    lat = np.asarray(enc.goal["frame_latents"])
    assert lat.shape == (len(frames), enc.feature_dim)
    np.testing.assert_allclose(lat, np.asarray(enc.phi(frames)), atol=1e-5)
    idx = np.arange(len(frames))
    p = np.asarray(frame_progress(lat, enc.phi(frames), 0.002))
    np.testing.assert_allclose(p, idx / (len(frames) - 1), atol=0.05)
    # progress reads no video: no window column (the loop runs the VAE on one frame)
    assert enc.latent_dim == 0 and enc.window(frames[None]).shape == (1, 0)
    progress_fingerprints = enc.fingerprints
    config.reward.video_form = "shaped"
    enc = RewardEncoders(config, StageContext(str(tmp_path), str(tmp_path / "agent"), logger))
    assert enc.latent_dim > 0
    # results.json's video_models: the same models and goal video, another embedding of it
    fp = enc.fingerprints
    assert set(fp) == {"vae_params", "goal_frames", "goal_embeddings"}
    assert [fp[k] == progress_fingerprints[k] for k in sorted(fp)] == [False, True, True]
    enc.start_episode(frames[:2])
    videos = np.stack([frames[idx[:enc.clip_len]]] * 2)
    stored = enc.stored(enc.window(videos))
    np.testing.assert_allclose(enc.potential(stored), video_reward(
        enc.goal["video_latent"], stored, config.reward.video_metric), atol=1e-6)
    # the loop's call per env step; without a video (between two of reward.video_stride)
    # φ alone
    phi, window = enc.encode(frames[:2], videos)
    np.testing.assert_allclose(window, enc.window(videos), atol=1e-6)
    phi_only, none = enc.encode(frames[:2])
    assert none is None
    np.testing.assert_allclose(phi_only, phi, atol=1e-6)


def test_eval_reward_scores_the_per_step_forms():
    """experiments/eval_reward: shaped per-step rewards telescope to the final score
    (Φ_0 = -1, the 1-frame episode, centred distance); progress is in [0, 1] per step."""
    from experiments import reward_eval_scores as eval_reward
    from vidrl_jax.models import vae3d
    from vidrl_jax.rewards.video_level import resample_indices

    steps = eval_reward.shaped_steps([2, 4, 5], np.array([-0.5, -0.2, 0.0]), -1.0, 5, GAMMA)
    np.testing.assert_allclose(steps, [1 - GAMMA, GAMMA * -0.5 + 1, (GAMMA - 1) * -0.5,
                                       GAMMA * -0.2 + 0.5, 0.2], atol=1e-12)
    cfg = vae3d.VAEConfig(channels=(4, 8), latent_channels=2, patch_size=2,
                          spatial_downsample=4, temporal_downsample=4, size=8)
    shapes = jax.eval_shape(lambda: vae3d.init(cfg, jax.random.PRNGKey(0)))  # (eager init
    params = jax.tree.map(lambda x: jnp.asarray(                            # is slow)
        rng.normal(0.0, 0.2, x.shape).astype(x.dtype)), shapes)
    frames = np.zeros((13, 8, 8, 3), np.uint8)
    for t in range(13):  # a bright square sliding right
        frames[t, 2:5, t // 2:t // 2 + 3] = 255
    scorer = eval_reward.Scorer(cfg, params, frames[resample_indices(13, 9)], window=8)
    ends, r = scorer.rewards(frames, stride=4)
    key = "vae/episode/centred_distance"
    forms = scorer.step_rewards(frames, 4, ends, r, key, GAMMA, 0.02, 0.0)
    assert set(forms) == {"vae/episode/shaped_centred_distance", "vae/frame/progress",
                          "vae/frame/progress_t0.1", "vae/frame/progress_g0.1",
                          "vae/frame/progress_g0.2", "vae/frame/progress_local",
                          "vae/frame/progress_proj", "pixels/frame/progress",
                          "pixels/frame/progress_local", "pixels/frame/progress_proj",
                          "pixels/frame/progress_masked"}
    f_ends, at_ends, all_steps = forms["vae/episode/shaped_centred_distance"]
    assert len(all_steps) == 12 and list(f_ends) == list(ends)
    ret = sum(GAMMA ** t * x for t, x in enumerate(all_steps))
    np.testing.assert_allclose(ret, GAMMA ** 12 * r[key][-1] + 1.0, atol=1e-5)
    for k in ("vae/frame/progress", "vae/frame/progress_t0.1", "vae/frame/progress_g0.1",
              "vae/frame/progress_local", "vae/frame/progress_proj", "pixels/frame/progress",
              "pixels/frame/progress_local", "pixels/frame/progress_masked"):
        p_ends, p, p_all = forms[k]
        assert list(p_ends) == list(range(1, 13)) and np.all((p >= 0) & (p <= 1))
    # raw pixels: the resampled goal frames sit on the bright square's path, so the
    # episode's frames are located in order along it
    assert np.all(np.diff(forms["pixels/frame/progress_proj"][1]) >= -1e-6)
    # the gate only lowers progress (exp(-d_min/σ) <= 1)
    assert np.all(forms["vae/frame/progress_g0.1"][1] <= forms["vae/frame/progress"][1] + 1e-6)


def test_reward_encoders_expert_goal_is_the_tasks_demo(tmp_path):
    """reward.video_goal=expert (the oracle ablation): the goal video is env.task's first
    successful expert demo in demos/ (resampled), its embedding that of the demo, the goal frame its
    last frame; a task without a demo is refused by name."""
    from experiments.benches.pipeline import write_reward_inputs
    from vidrl_jax.data.shards import ShardWriter
    from vidrl_jax.rewards.video_level import resample_indices
    from vidrl_jax.stages import SUMMARY_FILE, StageContext
    from vidrl_jax.utils.logging import MetricLogger

    config = metaworld.get_config("smoke")
    config.env.size = 16
    config.vae.update(channels=(4, 8), latent_channels=2)
    config.reward.update(video_goal="expert", video_form="score")  # (progress: below)
    write_reward_inputs(config, str(tmp_path))
    episodes = [(task, rng.integers(0, 256, (n + 1, 16, 16, 3), dtype=np.uint8), ok)
                for task, n, ok in (("drawer-close-v3", 12, True), (config.env.task, 15, False),
                                    (config.env.task, 20, True))]
    demos = {task: frames for task, frames, ok in episodes if ok}  # the failed one skipped
    with ShardWriter(str(tmp_path / "demos"), episodes_per_shard=1) as writer:
        for task, frames, ok in episodes:
            n = len(frames) - 1
            writer.add(dict(task=task, frames=frames, success=np.full(n, ok),
                            states=np.zeros((n + 1, 39), np.float32),
                            actions=np.zeros((n, 4), np.float32),
                            rewards=np.zeros(n, np.float32), instruction=task, seed=0))
    (tmp_path / "demos" / SUMMARY_FILE).write_text("{}")
    logger = MetricLogger(str(tmp_path), use_tensorboard=False, use_jsonl=False)
    ctx = StageContext(str(tmp_path), str(tmp_path / "agent"), logger)
    enc = RewardEncoders(config, ctx)
    demo = demos[config.env.task]
    t = int(config.diffusion.clip_length)
    np.testing.assert_array_equal(enc.goal_frames, demo[resample_indices(len(demo), t)])
    np.testing.assert_allclose(enc.goal["frame_feature"], enc.phi(demo[-1:])[0], atol=1e-6)
    clip = demo[resample_indices(len(demo), enc.clip_len)]
    expected = enc._embed(clip[None])[0] - (enc.still(clip[:1])[0] if enc.centre else 0.0)
    np.testing.assert_allclose(enc.goal["video_latent"], expected, atol=1e-6)
    expert = enc.fingerprints
    config.reward.video_goal = "decoded"  # the generated goal video: another goal digest
    generated = RewardEncoders(config, ctx).fingerprints
    assert generated["vae_params"] == expert["vae_params"]
    assert generated["goal_frames"] != expert["goal_frames"]
    config.reward.video_goal = "expert"
    config.reward.video_form = "progress"  # the frames it locates the agent's on: the demo's
    enc = RewardEncoders(config, ctx)
    np.testing.assert_allclose(enc.goal["frame_latents"], enc.phi(enc.goal_frames), atol=1e-6)
    np.testing.assert_array_equal(enc.goal_frames, demo[resample_indices(len(demo), t)])
    config.env.task = "window-open-v3"
    with pytest.raises(ConfigError, match="env.task='window-open-v3'.*demos.tasks"):
        RewardEncoders(config, ctx)


class _FrameEnvs:
    """n envs with random 16 px frames (state obs: zeros), for an AgentRun."""

    def __init__(self, size=16, n=1):
        self.rng, self.size, self.n = np.random.default_rng(0), size, n

    def _info(self):
        return {"frame": self.rng.integers(0, 256, (self.n, self.size, self.size, 3), np.uint8),
                "success": np.zeros(self.n)}

    def reset(self, seed):
        return np.zeros((self.n, 39), np.float32), self._info()

    def step(self, action):
        z = np.zeros(self.n)
        return np.zeros((self.n, 39), np.float32), z, z, z, self._info()


def _tiny_agent_run(tmp_path, num_envs=1, **reward):
    """An AgentRun of a tiny smoke config on _FrameEnvs, its reward inputs written."""
    from experiments.benches.pipeline import write_reward_inputs
    from vidrl_jax.stages import StageContext
    from vidrl_jax.utils.logging import MetricLogger

    config = metaworld.get_config("smoke")
    config.env.update(size=16, max_episode_steps=12, num_workers=num_envs)
    config.vae.update(channels=(4, 8), latent_channels=2)
    config.agent.update(hidden=(16, 16), batch_size=8, updates_per_call=2,
                        replay_capacity=100, prefill_steps=6)
    config.agent.fb.update(z_dim=4, hidden=(16, 16))
    config.reward.update(reward)
    write_reward_inputs(config, str(tmp_path))
    logger = MetricLogger(str(tmp_path), use_tensorboard=False, use_jsonl=False)
    return AgentRun(config, StageContext(str(tmp_path), str(tmp_path / "agent"), logger),
                    _FrameEnvs(n=num_envs))


def test_eval_returns_of_a_whole_episode_at_once_equal_the_per_step_sum(tmp_path):
    """Evaluation scores each episode's L steps in one call: per env, the same returns
    as scoring the steps one at a time and summing (the video and frame terms differ
    between the 2 envs, so a mixed-up order would show)."""
    from experiments.benches.agent_profile import NoBar

    run = _tiny_agent_run(tmp_path, num_envs=2)
    run.train_episode(NoBar())
    trs, _ = run.run_episode(1, 0, lambda obs, t: np.full((2, 4), 0.1 * (t % 3), np.float32))
    returns = run._episode_returns(trs)
    assert set(returns) == {"env_dense", "env_sparse", "video", "frame"}
    per_step = [run._eval_terms(t) for t in trs]
    for name, ret in returns.items():
        assert ret.shape == (2,)
        np.testing.assert_allclose(ret, np.sum([p[name] for p in per_step], axis=0),
                                   rtol=1e-5, atol=1e-5)
    assert abs(returns["video"][0] - returns["video"][1]) > 1e-6


def test_agent_with_progress_and_bsim_runs_the_vae_on_one_frame_only(tmp_path):
    """video_form=progress and frame_form=bsim read φ(s') alone: the loop never encodes
    the agent's video and the replay's window column is empty, and training runs."""
    from experiments.benches.agent_profile import NoBar

    run = _tiny_agent_run(tmp_path, video_form="progress", frame_form="bsim")
    videos = []
    embed = run.encoders._embed
    run.encoders._embed = lambda v: videos.append(v) or embed(v)
    trs = run.train_episode(NoBar())
    assert not videos and run.learner.specs["window_latent"][0] == (0,)
    assert trs[-1]["next_phi"].shape == (1, run.encoders.feature_dim)
    assert run.counters["updates"] > 0
    metrics = {k: np.asarray(v) for k, v in run.metrics.items()}
    assert 0.0 <= metrics["reward/video"].min() and metrics["reward/video"].max() <= 1.0
    assert -1.0 <= metrics["reward/frame"].min() and metrics["reward/frame"].max() <= 1.0


def test_eval_reward_probes_pay_a_small_moving_object_as_much_as_the_arm():
    """The probes of eval_reward (not reward options): a frame with the arm where it
    ends and the door shut is paid near 1 by progress (the arm's cell dominates the
    distance), 1/2 by local_progress (one of two moving cells at the end), and the
    projection pays the arm's share of the motion only."""
    from experiments.progress_probes import local_progress, pixel_cells, projected_progress

    t, cells, c = 5, 4, 2
    goal = np.zeros((t, cells, c), np.float32)
    goal[:, 0, 0] = np.linspace(0, 40, t)   # the arm: a large motion
    goal[:, 1, 1] = np.linspace(0, 8, t)    # the door: a small one
    goal[:, 2:] = 7.0                       # the static scene
    goal = goal.reshape(t, -1)
    hack = goal[0].copy().reshape(cells, c)
    hack[0, 0] = 40.0                       # arm at its end, door shut
    hack = hack.reshape(1, -1)
    np.testing.assert_allclose(local_progress(goal, goal, cells, 0.01), np.arange(t) / 4,
                               atol=1e-3)
    np.testing.assert_allclose(projected_progress(goal, goal), np.arange(t) / 4, atol=1e-6)
    assert float(frame_progress(goal, hack, temperature=0.01)[0]) > 0.9
    np.testing.assert_allclose(local_progress(goal, hack, cells, 0.01), [0.5], atol=1e-3)
    np.testing.assert_allclose(projected_progress(goal, hack), [1600 / 1664], atol=1e-6)
    # raw pixels laid out cell by cell, as the latent grid: pixel (5, 1) of an 8x8 frame
    # on a 2x2 grid is cell (1, 0) = 2, its pixel (1, 1)
    frame = np.zeros((1, 8, 8, 3), np.uint8)
    frame[0, 5, 1, 2] = 255
    cells_of = pixel_cells(frame, 2).reshape(4, 4, 4, 3)
    assert cells_of[2, 1, 1, 2] == 1.0 and cells_of.sum() == 1.0


def test_masked_progress_pays_the_object_not_the_arm():
    """eval_reward's arm-masked probe: a red arm sweeping the frame and a small blue door
    moving a little. The arm at its end with the door shut is paid near 1 by pixel
    progress (the arm dominates) and near 0 once the arm is masked; the goal's own
    frames are located in order; the door open with the arm anywhere is paid near 1."""
    from experiments.progress_probes import masked_progress, not_arm, pixel_cells

    def frame(arm_x, door_y):
        f = np.full((16, 16, 3), 128, np.uint8)
        f[10:14, arm_x:arm_x + 3] = (200, 20, 20)     # the arm: red
        f[door_y:door_y + 2, 13:15] = (20, 20, 200)   # the door: small, blue
        return f

    t = 5
    goal = np.stack([frame(2 * i, 2 + i) for i in range(t)])  # arm 0 -> 8, door 2 -> 6
    assert not_arm(goal[:1]).sum() == 16 * 16 - 12
    np.testing.assert_allclose(masked_progress(goal, goal, 0.01), np.arange(t) / 4, atol=1e-3)
    hack = frame(8, 2)[None]          # arm at its end, door shut
    done = frame(0, 6)[None]          # door open, arm back at its start
    grid = pixel_cells(goal, 4)
    assert float(frame_progress(grid, pixel_cells(hack, 4), temperature=0.01)[0]) > 0.9
    assert float(masked_progress(goal, hack, 0.01)[0]) < 0.05
    assert float(masked_progress(goal, done, 0.01)[0]) > 0.95
