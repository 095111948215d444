"""Stage `diffusion`: the latent video diffusion model, trained on the demos.

Input: demos/ (videos) and autoencoder/ (the VAE that maps them to latents).
Output in the stage directory: the EMA UNet (`vidrl_jax.diffusion.load(stage_dir)`),
`latents.npz` (the encoded training videos), `checkpoints/` (resume).
See `vidrl_jax.train.diffusion` for pretraining / finetuning / held-out-task mode.
"""
from vidrl_jax.models import vae3d
from vidrl_jax.train import diffusion as train_diffusion

DEPENDS = ("env", "demos", "vae", "diffusion", "clip")


def run(config, ctx):
    vae_cfg, vae_params = vae3d.load(ctx.stage_output("autoencoder"))
    demos_dir = ctx.stage_output("demos")
    return train_diffusion.train(config, ctx.stage_dir, ctx.logger, vae_cfg, vae_params,
                                 demos_dir)
