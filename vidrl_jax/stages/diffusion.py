"""Stage `diffusion`: the latent video diffusion model, trained on the demos.

Input: demos/ (videos) and autoencoder/ (the VAE that maps them to latents).
Output in the stage directory: the EMA UNet (`vidrl_jax.diffusion.load(stage_dir)`),
`latents.npz` (the encoded training videos), `checkpoints/` (resume).
See `vidrl_jax.train.diffusion` for pretraining / finetuning / held-out-task mode.
"""
from vidrl_jax.models import vae3d
from vidrl_jax.train import diffusion as train_diffusion

def depends(config):
    """Task-free unless env.task changes the training set (see stages.uses_target_task);
    then its summary's `target_*` figures are those of the first task it ran for."""
    from vidrl_jax.stages import TASK_FREE_ENV, uses_target_task
    extra = ("env.task",) if uses_target_task(config) else ()
    return TASK_FREE_ENV + ("demos", "vae", "diffusion", "clip") + extra


def run(config, ctx):
    vae_cfg, vae_params = vae3d.load(ctx.stage_output("autoencoder"))
    demos_dir = ctx.stage_output("demos")
    return train_diffusion.train(config, ctx.stage_dir, ctx.logger, vae_cfg, vae_params,
                                 demos_dir)
