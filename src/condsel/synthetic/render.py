"""Render the synthetic benchmark's clips: the paper's premise, built in on purpose.

Twelve classes. Six are told apart by appearance alone (a shape of a class
colour that drifts in a random direction), so a 2D model that averages frames
can get them right. Six come in three pairs that differ only by the direction
of time: ``move_left`` is ``move_right`` played backwards, ``shrink`` is
``grow`` backwards, and ``dark_then_bright`` is ``bright_then_dark``
backwards (a pink ring in a scene whose exposure flickers bright for one
frame, then dark for the next). A class and its pair therefore have the same distribution of frames:
a model that ignores frame order (a frame-averaging net) can tell which pair a
clip belongs to but is at chance inside it. A 3D model on every other frame
separates the first two pairs; the one-frame flicker needs every frame.

Each clip draws a difficulty d in [0, 1] that scales sensor noise, camera
shake, background texture, static clutter shapes, an occluding bar, low
contrast and a smaller object. Easy clips are easy for every model; hard ones
need resolution (a small shape) or more frames (noise, occlusion).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

HEIGHT, WIDTH, NUM_FRAMES, FPS = 48, 64, 16, 8

SHAPES = ("square", "triangle", "disc", "ring", "cross", "diamond")
APPEARANCE_CLASSES = {
    "red_square": ("square", (215.0, 45.0, 40.0)),
    "green_triangle": ("triangle", (45.0, 190.0, 60.0)),
    "blue_disc": ("disc", (50.0, 85.0, 225.0)),
    "yellow_ring": ("ring", (225.0, 205.0, 40.0)),
    "magenta_cross": ("cross", (205.0, 55.0, 200.0)),
    "cyan_diamond": ("diamond", (40.0, 200.0, 210.0)),
}
# Each motion pair has its own look (a white disc moves, a black disc grows or
# shrinks, a pink ring sits in a flickering scene), so a frame model can tell
# which pair a clip belongs to, and so which model it needs.
PINK = (245.0, 160.0, 195.0)
# Clutter uses colours no class uses, close enough to some (orange, purple,
# olive, teal) to mislead a coarse look at a noisy frame.
CLUTTER_COLOURS = ((235.0, 130.0, 30.0), (120.0, 60.0, 170.0), (130.0, 140.0, 40.0), (30.0, 120.0, 120.0))
# backward class -> the forward class it is the time reversal of
REVERSED_CLASSES = {"move_left": "move_right", "shrink": "grow", "dark_then_bright": "bright_then_dark"}
CLASS_NAMES = (
    *APPEARANCE_CLASSES,
    "move_right", "move_left", "grow", "shrink", "bright_then_dark", "dark_then_bright",
)

_SUBPIXEL = 4  # cv2 drawing with 4 fractional bits, so slow motion is smooth
Draw = tuple[str, float, float, float, tuple[float, float, float]]  # shape, x, y, radius, RGB


@dataclass(frozen=True)
class Scene:
    """Everything about a clip except its class: the nuisance factors."""

    difficulty: float
    background: np.ndarray  # (H, W, 3) float32
    distractors: tuple[Draw, ...]
    occluder: tuple[float, float, float, tuple[float, float, float]] | None  # x0, vx, width, colour
    shake: np.ndarray  # (T, 2) pixel offsets
    noise_sigma: float
    object_radius: float
    contrast: float  # 1 = full colour, lower blends the object into the background


def render_clip(class_name: str, rng: np.random.Generator) -> np.ndarray:
    """(NUM_FRAMES, HEIGHT, WIDTH, 3) uint8 RGB clip of ``class_name``; deterministic given ``rng``'s state."""
    if class_name in REVERSED_CLASSES:
        return render_clip(REVERSED_CLASSES[class_name], rng)[::-1].copy()
    if class_name not in CLASS_NAMES:
        raise ValueError(f"unknown synthetic class {class_name!r}; known: {', '.join(CLASS_NAMES)}")
    scene = sample_scene(rng)
    tracks = _object_tracks(class_name, scene, rng)
    exposure = _exposure(class_name, rng)
    noise = rng.normal(0.0, scene.noise_sigma, size=(NUM_FRAMES, HEIGHT, WIDTH, 3)).astype(np.float32)
    frames = np.empty((NUM_FRAMES, HEIGHT, WIDTH, 3), dtype=np.uint8)
    for t in range(NUM_FRAMES):
        frame = _compose(scene, tracks[t], t) * exposure[t]
        frames[t] = np.clip(frame + noise[t], 0, 255).astype(np.uint8)
    return frames


def sample_scene(rng: np.random.Generator) -> Scene:
    d = float(rng.uniform())
    base = rng.uniform(55, 110) + rng.uniform(-15, 15, size=3)  # greyish, slightly tinted
    texture = cv2.resize(rng.normal(size=(4, 5, 3)).astype(np.float32), (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
    background = (base + (5 + 20 * d) * texture).astype(np.float32)
    distractors = tuple(
        (
            SHAPES[rng.integers(len(SHAPES))],
            float(rng.uniform(3, WIDTH - 3)),
            float(rng.uniform(3, HEIGHT - 3)),
            float(rng.uniform(1.5, 3.5)),
            _jitter(CLUTTER_COLOURS[rng.integers(len(CLUTTER_COLOURS))], rng),
        )
        for _ in range(rng.poisson(4 * d))
    )
    occluder = None
    if rng.uniform() < 0.7 * d:
        occluder = (float(rng.uniform(0, WIDTH)), float(rng.uniform(-1, 1)), float(rng.uniform(5, 10)), tuple(base * 0.8))
    amplitude = 2.5 * d
    shake = np.clip(np.cumsum(rng.normal(0, 0.6 * amplitude + 1e-6, size=(NUM_FRAMES, 2)), axis=0), -2 * amplitude, 2 * amplitude)
    return Scene(
        difficulty=d,
        background=background,
        distractors=distractors,
        occluder=occluder,
        shake=shake,
        noise_sigma=2.0 + 14.0 * d,
        object_radius=float(rng.uniform(6, 9) * (1 - 0.45 * d)),
        contrast=float(1.0 - rng.uniform(0, 0.4 * d)),
    )


def _jitter(colour, rng: np.random.Generator) -> tuple[float, float, float]:
    return tuple(float(np.clip(c + rng.normal(0, 12), 0, 255)) for c in colour)


def _object_tracks(class_name: str, scene: Scene, rng: np.random.Generator) -> list[list[Draw]]:
    """Per frame, the class's objects to draw (the things that carry the label)."""
    r = scene.object_radius
    if class_name in APPEARANCE_CLASSES:
        shape, colour = APPEARANCE_CLASSES[class_name]
        colour = _jitter(colour, rng)
        xs, ys = _drift(rng, r)
        return [[(shape, xs[i], ys[i], r, colour)] for i in range(NUM_FRAMES)]
    if class_name == "move_right":
        white = (float(rng.uniform(175, 245)),) * 3
        speed = rng.uniform(1.2, 2.6)
        cx, y = rng.uniform(WIDTH / 2 - 8, WIDTH / 2 + 8), rng.uniform(r + 2, HEIGHT - r - 2)
        vy = rng.uniform(-0.3, 0.3)
        mid = (NUM_FRAMES - 1) / 2
        return [[("disc", cx + speed * (i - mid), y + vy * (i - mid), r, white)] for i in range(NUM_FRAMES)]
    if class_name == "grow":
        x, y = rng.uniform(15, WIDTH - 15), rng.uniform(13, HEIGHT - 13)
        radii = np.linspace(0.25 * r, min(1.6 * r, 13.0), NUM_FRAMES)
        dark = (float(rng.uniform(5, 35)),) * 3
        return [[("disc", x, y, radii[i], dark)] for i in range(NUM_FRAMES)]
    if class_name == "bright_then_dark":
        # a pink ring in every frame marks the pair; the flicker is in _exposure
        x, y = rng.uniform([r + 2, r + 2], [WIDTH - r - 2, HEIGHT - r - 2])
        return [[("ring", x, y, r, _jitter(PINK, rng))] for _ in range(NUM_FRAMES)]
    raise AssertionError(f"no track for {class_name}")


def _exposure(class_name: str, rng: np.random.Generator) -> np.ndarray:
    """Per-frame brightness gain: 1, except a one-frame bright flash and then a one-frame dark one.

    Both flicker frames lie in frames 4..11, so a 12-frame window from frame 0
    or 4 sees both, while a sampler taking every other frame sees exactly one
    of the two and cannot tell their order.
    """
    gain = np.ones(NUM_FRAMES, dtype=np.float32)
    if class_name == "bright_then_dark":
        flash = int(rng.integers(4, 11))
        gain[flash], gain[flash + 1] = rng.uniform(1.6, 2.0), rng.uniform(0.25, 0.45)
    return gain


def _drift(rng: np.random.Generator, r: float) -> tuple[np.ndarray, np.ndarray]:
    """A random-direction drift that bounces off the frame edges."""
    angle, speed = rng.uniform(0, 2 * np.pi), rng.uniform(0.3, 1.2)
    lo, hi = np.array([r + 2, r + 2]), np.array([WIDTH - r - 2, HEIGHT - r - 2])
    pos = rng.uniform(lo, hi)
    vel = speed * np.array([np.cos(angle), np.sin(angle)])
    path = []
    for _ in range(NUM_FRAMES):
        path.append(pos.copy())
        pos = pos + vel
        out = (pos < lo) | (pos > hi)
        vel[out] = -vel[out]
        pos = np.clip(pos, lo, hi)
    path = np.array(path)
    return path[:, 0], path[:, 1]


def _compose(scene: Scene, objects: list[Draw], t: int) -> np.ndarray:
    frame = scene.background.copy()
    for draw in scene.distractors:
        _draw_shape(frame, *draw)
    for shape, x, y, r, colour in objects:
        local = frame[int(np.clip(y, 0, HEIGHT - 1)), int(np.clip(x, 0, WIDTH - 1))]
        blended = tuple(float(c * scene.contrast + b * (1 - scene.contrast)) for c, b in zip(colour, local))
        _draw_shape(frame, shape, x, y, r, blended)
    if scene.occluder is not None:
        x0, vx, width, colour = scene.occluder
        left = (x0 + vx * t) % (WIDTH + width) - width
        cv2.rectangle(frame, (int(left), 0), (int(left + width), HEIGHT), colour, -1)
    dx, dy = scene.shake[t]
    shift = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(frame, shift, (WIDTH, HEIGHT), borderMode=cv2.BORDER_REFLECT101)


def _draw_shape(img: np.ndarray, shape: str, x: float, y: float, r: float, colour) -> None:
    s = 1 << _SUBPIXEL

    def poly(points) -> None:
        pts = np.round((np.asarray(points) + [x, y]) * s).astype(np.int32)
        cv2.fillConvexPoly(img, pts, colour, cv2.LINE_AA, _SUBPIXEL)

    centre, radius = (round(x * s), round(y * s)), max(1, round(r * s))
    if shape == "disc":
        cv2.circle(img, centre, radius, colour, -1, cv2.LINE_AA, _SUBPIXEL)
    elif shape == "ring":
        cv2.circle(img, centre, max(1, round(r * 0.8 * s)), colour, max(1, round(r * 0.4)), cv2.LINE_AA, _SUBPIXEL)
    elif shape == "square":
        a = r * 0.85
        poly([[-a, -a], [a, -a], [a, a], [-a, a]])
    elif shape == "triangle":
        poly([[0, -r], [r * 0.95, r * 0.7], [-r * 0.95, r * 0.7]])
    elif shape == "diamond":
        poly([[0, -r], [r, 0], [0, r], [-r, 0]])
    elif shape == "cross":
        a, b = r, r * 0.33
        poly([[-a, -b], [a, -b], [a, b], [-a, b]])
        poly([[-b, -a], [b, -a], [b, a], [-b, a]])
    else:
        raise ValueError(f"unknown shape {shape!r}")
