"""Every text the page shows: the introduction, each tab's explanation, and the page's CSS."""

from genmodels.preprocess import MAX_FILE_BYTES, MAX_PIXELS

TITLE = "Latent Lab · Fashion-MNIST"

# Model outputs are sent at their true 28x28 resolution (small to encode and honest through the API);
# the browser enlarges them without smoothing.
CSS = """
img { image-rendering: pixelated; }
.enlarge img { width: 100% !important; height: 100% !important; object-fit: contain; }
"""

INTRO = f"""
# Latent Lab · Fashion-MNIST
Small models trained on Fashion-MNIST's 60,000 28x28 images: **Generate** clothes from random seeds,
push your picture through a VAE and back (**Round trip**), walk between latents (**Interpolate**), edit
images classically (**Edit**) and in latent space (**Studio**), watch the flow model turn noise into a
picture (**Denoise**), explore the VAE's latent **Map**, and **Train** a model of your own.
Same seed and settings give the same pixels. Uploads: PNG, JPEG, WebP, BMP, TIFF or GIF,
at most {MAX_FILE_BYTES // 2**20} MB and {MAX_PIXELS:,} pixels.
"""

GENERATE = """
**What you see.** Each image is a decoder's output for a random latent vector *z*; image *i* uses seed
*seed + i*. The **DCGAN** was trained as a two-player game, min<sub>G</sub> max<sub>D</sub> E[log D(x)] +
E[log(1 − D(G(z)))]: the discriminator D learns to tell real from generated images while the generator G
learns to fool it; *z* is standard normal. The **cGAN** plays the same game with a class label given to
both players, so you pick the class. The **VAE** decodes *z* drawn from a mixture of Gaussians fitted to
where its encoder places real images, which avoids the empty regions of its N(0, I) prior.
**Truncation** (GANs) redraws latent components larger than the threshold and **temperature** (VAE)
narrows the draw: both trade variety for cleaner, more typical images.
**Flow** (flow matching, a diffusion model) learned the velocity *v(x<sub>t</sub>, t, y)* that carries
noise to images along straight paths x<sub>t</sub> = (1 − t) x<sub>0</sub> + t ε; sampling starts from
the seed's noise at t = 1 and follows that ODE to t = 0 in a few **steps** (more steps: closer to the
exact path, slower). **Guidance** mixes the velocity with and without the class,
v<sub>uncond</sub> + w (v<sub>class</sub> − v<sub>uncond</sub>): 0 ignores the class, 1 is the plain
conditional model, larger values give more typical images of the class at some cost in variety. Values
above 1 act only on the last, least noisy part of the path (t ≤ {guidance_below:g}, this checkpoint's
setting); before that the class alone steers.
"""

ROUNDTRIP = """
**What you see.** The VAE's encoder maps your image to a Gaussian *q(z|x)* over a small latent space
(its mean and standard deviation per dimension are plotted below) and the decoder maps the mean back to
pixels. Training maximised the ELBO, log p(x) ≥ E<sub>q(z|x)</sub>[log p(x|z)] − KL(q(z|x) ‖ p(z)):
reconstruct well, but keep *q* close to the prior. What the model cannot represent shows up in the error
map; samples from *q(z|x)* show how sure the encoder is.
"""

INTERPOLATE = """
**What you see.** A path between two latents, decoded step by step. Latents drawn from a
high-dimensional Gaussian lie near a sphere of radius √d, so the straight line (**lerp**) passes
through the low-probability inside where images wash out; **slerp** follows the sphere instead
(Shoemake's spherical interpolation, as in the DCGAN and VAE literature). With the VAE an endpoint can
also be your own image, encoded to its posterior mean; with flow, your image's noise, found by running
its ODE backwards.
"""

EDIT = """
**What you see.** Classic pixel edits (crop, rotate, flip, affine: scale, translate, shear) applied to
your image after it is brought to 28x28, with a live preview. **Projecting onto the model** encodes the
edited image with the VAE and decodes it: the result is the nearest image the model knows how to make,
so edits it has never seen (an upside-down shoe) are pulled back towards the data, and blurred.
**Realizing** with the flow model (SDEdit) noises the edited image to t = strength and lets the model
denoise it: the rough parts are redrawn as the model would draw them, sharp, while the layout stays;
more strength, more realism and less of your image.
"""

DENOISE = """
**What you see.** The flow model's sampler at work. Training showed it points on straight paths
x<sub>t</sub> = (1 − t) x<sub>0</sub> + t ε between images x<sub>0</sub> (t = 0) and noise ε (t = 1), and
taught it the **velocity** v(x<sub>t</sub>, t, y) ≈ ε − x<sub>0</sub> along them. Sampling solves the
ODE dx/dt = v backwards from the seed's noise, a few **steps** of Heun's method; at every step the
velocity also gives a guess of the finished image, x<sub>0</sub> = x<sub>t</sub> − t v (right), which
sharpens as t falls. **Guidance** extrapolates from the velocity without the class to the one with it,
v<sub>uncond</sub> + w (v<sub>class</sub> − v<sub>uncond</sub>): 0 ignores the class, 1 is the plain
conditional model, more pushes towards typical members of the class; *Guidance side by side* shows the
three. With **your picture**, the run starts from it noised to t = strength (SDEdit): what the noise
hides, the model redraws, which is how *Realize* on the Edit and Round trip tabs works.
"""

STUDIO = """
**What you see.** Bring a latent into the studio (a seed, or **your own image**, inverted: the VAE
encodes it; flow runs its ODE backwards from the image to its noise; a GAN has no encoder of its own,
so an encoder trained for it guesses *z* and L-BFGS refines the guess on the pixel error, the picture
improving on the page as it goes), then move it. With a class input
(cGAN, flow) the row **as every class** shows the same latent under all ten labels: what the latent
holds apart from the class. **Class directions** point from the average latent to where the
classifier (GANs, on generated samples) or the labels (VAE and flow, on training images: encoded, or
their noise found by the ODE run backwards) put a class; list
classes to **keep fixed** and the direction is made orthogonal to theirs (InterFaceGAN's conditional
manipulation). **Principal directions** are the main axes of variation (GANSpace: PCA of the GAN's
first layer, carried back to *z*; for the VAE and flow, PCA of those latents). **Masked regeneration**
fits a GAN's or the VAE's latent to the kept pixels; flow instead samples the painted part while
holding the kept pixels on their path (RePaint). Sliders are absolute
offsets from the latent you brought in. Every result (also of A − B + C and masked regeneration)
is kept: **Undo** steps back, and the slider shows before and after.
"""

MAP = """
**What you see.** The VAE's encoder places each of the 10,000 test images at its posterior mean; PCA
flattens those latents to two dimensions, coloured by class. **Click anywhere**: that point is mapped
back into latent space (the two map coordinates along the two principal axes, every other direction at
its average) and decoded, next to the real test images mapped nearest to it.
"""

TRAIN = """
**Watch a model learn.** Pick a family, the data (all of Fashion-MNIST, a few of its classes, or your own
pictures, each brought to 28x28 like a Round trip upload) and a time budget, then Start. The run trains in
its own process on one CPU thread while you watch: every few seconds the grid decodes the same fixed seeds
from the current weights (the average of recent weights, for the GAN and the flow), so you see noise turn
into clothes. When it ends (budget or Stop) the model joins the lab as *yours* in Generate's picker, with
a quick FIDc from 1,000 samples, and downloads as a checkpoint folder that `python -m genmodels sample
--checkpoint` and this app load. Runs wait in line when the server is busy. What a few minutes buy on
one CPU thread (FIDc from 1,000 samples; lower is better; the bundled models score 8-53 from 10,000):
VAE 1367 / 735 / 455, DCGAN 1562 / 188 / 48, flow 1194 / 329 / 138 after 30 s / 2 min / 5 min.

**The curves.** *VAE*: the ELBO's two terms. The reconstruction term −log p(x|z) (how well the decoder
redraws a picture from its code) falls quickly; the KL term KL(q(z|x) ‖ p(z)) (how far the codes stray
from the prior) rises while the encoder learns to use the latent, then settles as the two trade off.
*GAN*: the two players' losses do not fall together, because each player's gain is the other's loss.
D(x) is the discriminator's belief that real pictures are real, D(G(z)) that generated ones are; a
healthy game keeps both away from 0 and 1 and oscillates rather than converging; D's loss at zero with
G's climbing means the discriminator has won and the generator stops learning. *Flow*: the mean squared
error between the predicted velocity and the true one, ε − x₀, along the straight path from picture to
noise; it falls but never reaches zero, since many pictures share each noisy point.
"""
