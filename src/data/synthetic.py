"""A synthetic twin of KTH-Actions, for working offline.

Every video shows one articulated person (head, torso, upper and lower arms and legs),
animated by joint-angle trajectories and drawn as anti-aliased capsules into a KTH-like
scene at 160x120, 25 fps, grayscale, then blurred, jittered, made noisy and encoded
lossily (mpeg4 in AVI, like KTH's DivX files). The layout and names are KTH's, so the
same ``prepare`` -> dataset -> training path runs on it::

    <out>/<action>/personXX_<action>_dY_uncomp.avi
    <out>/00sequences.txt   the frame ranges of the four subsequences of every video
    <out>/synthetic.json    {"preset", "seed", "generator_version", ...}

- Locomotion (walking, jogging, running; side view): the person crosses the frame and
  leaves it four times, alternating direction; each crossing is one subsequence. The
  three gaits differ by speed, cadence, stride, knee lift, arm swing and lean, and every
  person has their own speed and style factors, so one person's fast jog overlaps
  another's slow run.
- Hand actions: boxing (side view, alternating punches), handwaving (frontal, both arms
  waving above the head), handclapping (frontal, hands meet in front of the chest);
  four contiguous repetitions whose rate and amplitude vary per person and repetition.
- Scenarios: d1 textured ground with a horizon; d2 = d1 zooming in and out; d3 = d1 in
  other clothes (a coat); d4 indoors (a vignetted wall, a floor line, other lighting).
- The scene (background, camera jitter, zoom, sensor noise) is drawn from
  (seed, person, scenario) only: it never depends on the action.

Command line::

    python -m src.data.synthetic --out data/synth_raw [--preset tiny|small|full] [--seed S]
                            [--workers N] [--grid imgs/synthetic_grid.png]
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from src.data.sources.kth import (
    ACTIONS,
    MISSING_VIDEOS,
    PERSONS,
    SCENARIOS,
    format_sequences,
    parse_video_name,
    video_id,
)
from src.files import atomic_path, atomic_write, remove_temp_files

GENERATOR_VERSION = 1
WIDTH, HEIGHT, FPS = 160, 120, 25
BIT_RATE = 300_000  # mpeg4 bits per second: visibly lossy at 160x120, like KTH's DivX

LOCOMOTION = ("walking", "jogging", "running")
FRONTAL = ("handwaving", "handclapping")

PRESETS = {
    # persons 1-14 train, 15-16 val, 17-25 test: every preset spans the three splits
    "tiny": dict(persons=(1, 2, 15, 17), scenarios=(1, 4), repetitions=2,
                 locomotion_speedup=(2.4, 1.65, 1.2), repetition_frames=(30, 38), gap_frames=(3, 6)),
    "small": dict(persons=(1, 2, 3, 4, 5, 6, 15, 16, 17, 18, 19, 20), scenarios=SCENARIOS,
                  repetitions=4, locomotion_speedup=(1.0, 1.0, 1.0), repetition_frames=(42, 60), gap_frames=(4, 12)),
    "full": dict(persons=PERSONS, scenarios=SCENARIOS, repetitions=4,
                 locomotion_speedup=(1.0, 1.0, 1.0), repetition_frames=(42, 60), gap_frames=(4, 12)),
}

# Streams of randomness: (seed, person, STREAM) for the look, (seed, person, scenario, STREAM)
# for the scene, (seed, person, action, scenario, STREAM) for the motion.
_LOOK, _SCENE, _NOISE, _MOTION = 11, 22, 33, 44

# Gait families, indexed walking, jogging, running: speed in px/frame at zoom 1 (before the
# person's factor), cadence in gait cycles per second, and the range of the "intensity"
# that sets knee lift, arm swing, elbow bend and lean. Ranges overlap on purpose.
_GAIT_SPEED = (2.1, 3.3, 4.1)
_GAIT_CADENCE = (0.95, 1.3, 1.5)
_GAIT_INTENSITY = ((0.0, 0.7), (0.5, 1.4), (1.0, 1.9))

# Body proportions in units of the person's height H.
_THIGH, _SHIN, _FOOT = 0.245, 0.245, 0.065
_TORSO, _NECK, _HEAD_R = 0.29, 0.035, 0.062
_UPPER_ARM, _FOREARM = 0.17, 0.165
_SHOULDER_HALF, _HIP_HALF = 0.10, 0.05  # frontal view


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([int(k) for k in key])


# ----------------------------------------------------------------------------- persons


@dataclass
class Look:
    """A person's fixed appearance and style (scenario 3 swaps the clothes for a coat)."""
    height: float        # H, px at zoom 1
    build: float         # torso width factor
    limb: float          # limb thickness factor
    shirt: float         # gray levels 0-255
    trousers: float
    head: float
    shoes: float
    coat: float
    speed: tuple         # per-gait speed factors (walking, jogging, running)
    cadence: float       # gait-cycle rate factor
    intensity: tuple     # per-gait intensity in _GAIT_INTENSITY ranges
    elbow: float         # style factors around 1
    lean: float
    knee: float
    hand_rate: float     # hand-action rate factor
    hand_amplitude: float


def person_look(person: int, seed: int = 0) -> Look:
    """The look and style of one of the persons 1-25 (fixed across actions and scenarios)."""
    rng = _rng(seed, person, _LOOK)
    u = rng.uniform
    base_speed = u(0.8, 1.2)  # a brisk person is brisk in every gait
    return Look(
        height=u(64, 80), build=u(0.85, 1.2), limb=u(0.85, 1.2),
        shirt=u(25, 85), trousers=u(30, 130), head=u(55, 105), shoes=u(15, 40), coat=u(35, 110),
        speed=tuple(base_speed * u(0.9, 1.1) for _ in range(3)), cadence=u(0.9, 1.1),
        intensity=tuple(u(lo, hi) for lo, hi in _GAIT_INTENSITY),
        elbow=u(0.7, 1.3), lean=u(0.6, 1.4), knee=u(0.8, 1.2),
        hand_rate=u(0.8, 1.2), hand_amplitude=u(0.8, 1.15),
    )


# ----------------------------------------------------------------------------- scene


@dataclass
class Scene:
    """What (seed, person, scenario) fixes: lighting, ground line, scale and camera path."""
    scenario: int
    ground_y: float      # feet line, world px
    horizon_y: float     # outdoors: horizon; indoors: floor line
    scale: float         # camera distance factor on the person's height
    zoom_amplitude: float
    zoom_period: float
    zoom_phase: float
    jitter: np.ndarray   # [3, 2, 3]: (component, axis, amplitude/frequency/phase)
    noise_sigma: float
    vignette: float
    figure_light: float  # multiplies the figure's gray levels


def scene_params(person: int, scenario: int, seed: int = 0) -> Scene:
    """The scene of a (person, scenario): the same for all six actions."""
    rng = _rng(seed, person, scenario, _SCENE)
    u = rng.uniform
    indoor = scenario == 4
    jitter = np.stack([u(0.15, 0.5, (3, 2)), u(0.05, 0.9, (3, 2)), u(0, 2 * np.pi, (3, 2))], axis=-1)
    return Scene(
        scenario=scenario,
        ground_y=u(100, 108) if indoor else u(94, 106),
        horizon_y=u(88, 96) if indoor else u(6, 36),
        scale=u(0.92, 1.08),
        zoom_amplitude=u(0.2, 0.3) if scenario == 2 else 0.0,
        zoom_period=u(110, 190), zoom_phase=u(0, 2 * np.pi),
        jitter=jitter, noise_sigma=u(2.0, 4.5),
        vignette=u(0.35, 0.55) if indoor else u(0.0, 0.15),
        figure_light=u(0.85, 1.0) if indoor else u(0.95, 1.1),
    )


def camera_path(scene: Scene, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Returns ``(center [T,2], zoom [T])``: the world point at the frame's center, and the zoom."""
    t = np.arange(num_frames, dtype=np.float64)[:, None]
    amp, freq, phase = scene.jitter[..., 0], scene.jitter[..., 1], scene.jitter[..., 2]  # [3, 2]
    shake = (amp[None] * np.sin(2 * np.pi * freq[None] * t[..., None] / FPS + phase[None])).sum(1)  # [T, 2]
    center = np.array([WIDTH / 2, HEIGHT / 2]) + shake
    zoom = 1.0 + scene.zoom_amplitude * np.sin(2 * np.pi * t[:, 0] / scene.zoom_period + scene.zoom_phase)
    return center, zoom


_NOISE_BANK = 32  # distinct sensor-noise frames per scene

# The background is a world image larger than the frame, so zooming out and jitter stay inside.
_MARGIN_X, _MARGIN_Y = 48, 36


def _upsample(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a 2-D array to ``shape`` (rows, cols), float32."""
    from PIL import Image
    return np.asarray(Image.fromarray(a.astype(np.float32)).resize(shape[::-1], Image.BILINEAR))


def _blur(img: np.ndarray) -> np.ndarray:
    """A slight optical blur: the [1, 2, 1] / 4 kernel along both axes of [H, W]."""
    img = np.pad(img, 1, mode="edge")
    img = 0.25 * img[:-2] + 0.5 * img[1:-1] + 0.25 * img[2:]
    return 0.25 * img[:, :-2] + 0.5 * img[:, 1:-1] + 0.25 * img[:, 2:]


def _periodic_noise(rng: np.random.Generator, size: int, cutoff: tuple[float, float]) -> np.ndarray:
    """Smooth noise [size, size] that tiles seamlessly, std 1; ``cutoff`` (rows, cols) in cycles/px.

    A low cutoff along the columns stretches the texture horizontally, like grass seen from afar.
    """
    fy, fx = np.fft.fftfreq(size)[:, None], np.fft.rfftfreq(size)[None]
    spectrum = np.fft.rfft2(rng.standard_normal((size, size))) / (1 + (fy / cutoff[0]) ** 2 + (fx / cutoff[1]) ** 2)
    noise = np.fft.irfft2(spectrum, s=(size, size))
    return (noise / noise.std()).astype(np.float32)


def background(person: int, scenario: int, seed: int = 0) -> np.ndarray:
    """The world background, float32 [HEIGHT + 2*36, WIDTH + 2*48], gray levels 0-255.

    World pixel (x, y) of the frame at zoom 1 without jitter is at [y + 36, x + 48].
    """
    scene = scene_params(person, scenario, seed)
    rng = _rng(seed, person, scenario, _SCENE + 1)
    h, w = HEIGHT + 2 * _MARGIN_Y, WIDTH + 2 * _MARGIN_X
    ys = np.arange(h, dtype=np.float32)[:, None] - _MARGIN_Y
    xs = np.arange(w, dtype=np.float32)[None, :] - _MARGIN_X
    patches = _upsample(rng.standard_normal((4, 6)), (h, w))  # large, soft light variation
    if scenario == 4:
        wall = rng.uniform(150, 195) + 4 * patches + 1.5 * _upsample(rng.standard_normal((24, 32)), (h, w))
        floor = rng.uniform(85, 120) + 6 * patches + 5 * _upsample(rng.standard_normal((40, 60)), (h, w))
        line = scene.horizon_y
        img = np.where(ys < line, wall, floor + 0.25 * (ys - line))
        img = np.where(np.abs(ys - line) < 1.0, rng.uniform(60, 90), img)  # the skirting line
        return _blur(img.astype(np.float32))
    # Outdoors: a textured ground plane seen in perspective below the horizon.
    texture = _periodic_noise(rng, 256, (0.35, 0.04)) + 0.5 * _periodic_noise(rng, 256, (0.06, 0.015))
    depth = 1.0 / np.maximum(ys - scene.horizon_y + 3.0, 1.0)                 # [h, 1]
    u = ((xs - WIDTH / 2) * depth * 200.0).astype(np.int64) % 256            # [h, w]
    v = (depth * 9000.0).astype(np.int64) % 256                              # [h, 1]
    ground_gray = rng.uniform(105, 140)
    bands = 5 * _upsample(rng.standard_normal((8, 1)), (h, 1))               # broad lighter and darker strips
    ground = (ground_gray + rng.uniform(5, 9) * texture[v, u] + 3 * patches + bands
              - 0.12 * (ys - scene.horizon_y))                              # a little darker nearby
    band = np.exp(-np.maximum(ys - scene.horizon_y, 0) / rng.uniform(3, 8))   # a pale far field
    ground = ground + rng.uniform(10, 30) * band
    sky = ground_gray + rng.uniform(15, 40) + 3 * patches
    img = np.where(ys < scene.horizon_y, sky, ground)
    return _blur(img.astype(np.float32))


# ----------------------------------------------------------------------------- motion

# Segment table: name, (joint a, joint b), radius (units of H, times the look's factor), color.
_SIDE_SEGMENTS = (  # painter's order: far limbs first
    ("far_upper_arm", "far_shoulder", "far_elbow", 0.030, "shirt_far"),
    ("far_forearm", "far_elbow", "far_hand", 0.025, "shirt_far"),
    ("far_thigh", "far_hip", "far_knee", 0.042, "trousers_far"),
    ("far_shin", "far_knee", "far_ankle", 0.032, "trousers_far"),
    ("far_foot", "far_ankle", "far_toe", 0.020, "shoes"),
    ("near_thigh", "near_hip", "near_knee", 0.042, "trousers"),
    ("near_shin", "near_knee", "near_ankle", 0.032, "trousers"),
    ("near_foot", "near_ankle", "near_toe", 0.020, "shoes"),
    ("torso", "pelvis", "chest", 0.075, "shirt"),
    ("coat", "chest", "coat_hem", 0.0, "coat"),     # only in scenario 3
    ("head", "head", "head", _HEAD_R, "head"),
    ("near_upper_arm", "near_shoulder", "near_elbow", 0.030, "shirt"),
    ("near_forearm", "near_elbow", "near_hand", 0.025, "shirt"),
)
_FRONT_SEGMENTS = (
    ("far_thigh", "far_hip", "far_knee", 0.042, "trousers"),
    ("far_shin", "far_knee", "far_ankle", 0.032, "trousers"),
    ("far_foot", "far_ankle", "far_toe", 0.022, "shoes"),
    ("near_thigh", "near_hip", "near_knee", 0.042, "trousers"),
    ("near_shin", "near_knee", "near_ankle", 0.032, "trousers"),
    ("near_foot", "near_ankle", "near_toe", 0.022, "shoes"),
    ("torso", "pelvis", "chest", 0.100, "shirt"),
    ("coat", "chest", "coat_hem", 0.0, "coat"),
    ("head", "head", "head", _HEAD_R, "head"),
    ("far_upper_arm", "far_shoulder", "far_elbow", 0.030, "shirt"),
    ("far_forearm", "far_elbow", "far_hand", 0.025, "shirt"),
    ("near_upper_arm", "near_shoulder", "near_elbow", 0.030, "shirt"),
    ("near_forearm", "near_elbow", "near_hand", 0.025, "shirt"),
)


def _direction(angle: np.ndarray) -> np.ndarray:
    """Unit vectors [..., 2] for angles measured from straight down, positive forward (x), y up."""
    return np.stack([np.sin(angle), -np.cos(angle)], axis=-1)


def _limb(start: np.ndarray, angle: np.ndarray, length: float) -> np.ndarray:
    return start + length * _direction(angle)


def _legs(joints: dict, hip_angles: tuple, knee_flex: tuple, hips: tuple) -> None:
    """Adds knee, ankle and toe of both legs; hip angles from down (forward +), knee flex bends back."""
    for side, hip_angle, flex, hip in zip(("near", "far"), hip_angles, knee_flex, hips):
        joints[f"{side}_hip"] = hip
        joints[f"{side}_knee"] = _limb(hip, hip_angle, _THIGH)
        joints[f"{side}_ankle"] = _limb(joints[f"{side}_knee"], hip_angle - flex, _SHIN)
        joints[f"{side}_toe"] = _limb(joints[f"{side}_ankle"], hip_angle - flex + np.pi / 2, _FOOT)


def _upper_body(joints: dict, pelvis: np.ndarray, lean: np.ndarray, shoulder_offset: float) -> None:
    """Adds chest, shoulders, head and coat hem above ``pelvis`` [T,2] for a torso ``lean`` [T]."""
    up = np.stack([np.sin(lean), np.cos(lean)], axis=-1)  # the torso axis, pointing up
    chest = pelvis + _TORSO * up
    joints["pelvis"], joints["chest"] = pelvis, chest
    side = np.stack([up[:, 1], -up[:, 0]], axis=-1)  # perpendicular, towards +x
    joints["near_shoulder"] = chest + shoulder_offset * side
    joints["far_shoulder"] = chest - shoulder_offset * side
    joints["head"] = chest + (_NECK + _HEAD_R + 0.02) * up
    joints["coat_hem"] = pelvis - 0.16 * up


def _arm(joints: dict, side: str, shoulder_angle: np.ndarray, elbow_angle: np.ndarray) -> None:
    """Forward kinematics of one arm: angles from down (forward/outward +); the forearm's is absolute."""
    joints[f"{side}_elbow"] = _limb(joints[f"{side}_shoulder"], shoulder_angle, _UPPER_ARM)
    joints[f"{side}_hand"] = _limb(joints[f"{side}_elbow"], elbow_angle, _FOREARM)


def _smooth_steps(values: np.ndarray, lengths: list[int]) -> np.ndarray:
    """Per-frame values [T] interpolated between per-repetition ``values`` at their centers."""
    starts = np.cumsum([0] + lengths[:-1])
    centers = starts + np.asarray(lengths) / 2
    return np.interp(np.arange(sum(lengths)), centers, values)


def _gait(look: Look, gait: int, phase: np.ndarray) -> dict:
    """Side-view joints [T,2] (units of H, x forward, y up, origin on the ground below the hip)."""
    g = look.intensity[gait]
    cycle = 2 * np.pi * phase
    hip_amplitude = np.radians(19 + 7 * g)
    knee_lift = np.radians(40 + 28 * g) * look.knee
    knee_stance = np.radians(6 + 6 * g)
    near_hip = hip_amplitude * np.sin(cycle)
    far_hip = hip_amplitude * np.sin(cycle + np.pi)
    # the knee bends most while the leg swings forward (the thigh angle rising)
    near_flex = knee_stance + knee_lift * np.maximum(0, np.cos(cycle - 0.5)) ** 1.5
    far_flex = knee_stance + knee_lift * np.maximum(0, np.cos(cycle + np.pi - 0.5)) ** 1.5
    joints: dict = {}
    zero = np.zeros((len(phase), 2))
    _legs(joints, (near_hip, far_hip), (near_flex, far_flex), (zero, zero))
    lowest = np.minimum(joints["near_ankle"][:, 1], joints["far_ankle"][:, 1]) - 0.012
    bounce = 0.012 * g * np.abs(np.sin(cycle))  # flight phase of jogging and running
    lift = np.stack([np.zeros_like(lowest), bounce - lowest], axis=-1)
    for name in list(joints):
        joints[name] = joints[name] + lift
    pelvis = joints["near_hip"]
    lean = np.radians(2 + 5 * g) * look.lean + np.radians(1.5) * np.sin(2 * cycle)
    _upper_body(joints, pelvis, lean, 0.0)
    arm_amplitude = np.radians(14 + 16 * g)
    elbow = np.radians(12 + 40 * g) * look.elbow
    for side, sign in (("near", -1), ("far", 1)):  # each arm swings against the same-side leg
        shoulder = sign * arm_amplitude * np.sin(cycle) + np.radians(3 * g)
        _arm(joints, side, shoulder, shoulder + elbow + 0.3 * elbow * np.sin(cycle + (sign > 0) * np.pi))
    return joints


def _standing_legs(num_frames: int, frontal: bool, sway: np.ndarray) -> dict:
    joints: dict = {}
    if frontal:
        hips = (np.stack([_HIP_HALF + sway, np.zeros(num_frames)], -1),
                np.stack([-_HIP_HALF + sway, np.zeros(num_frames)], -1))
        angles = (np.full(num_frames, np.radians(4)) - sway, np.full(num_frames, -np.radians(4)) - sway)
        # in frontal view "forward" is outward, and feet point slightly outward too
        _legs(joints, angles, (np.zeros(num_frames),) * 2, hips)
        for side, s in (("near", 1), ("far", -1)):
            joints[f"{side}_toe"] = joints[f"{side}_ankle"] + np.array([s * 0.03, -0.01])
    else:
        zero = np.zeros((num_frames, 2))
        _legs(joints, (np.radians(12) + sway, -np.radians(10) + sway),
              (np.full(num_frames, np.radians(12)), np.full(num_frames, np.radians(6))), (zero, zero))
    lowest = np.minimum(joints["near_ankle"][:, 1], joints["far_ankle"][:, 1]) - 0.012
    for name in list(joints):
        joints[name] = joints[name] - np.stack([np.zeros_like(lowest), lowest], -1)
    return joints


def _hand_action(look: Look, action: str, phase: np.ndarray, amplitude: np.ndarray,
                 rng: np.random.Generator) -> dict:
    """Joints [T,2] of boxing (side view), handwaving and handclapping (frontal)."""
    num_frames = len(phase)
    frontal = action in FRONTAL
    sway = 0.012 * np.sin(2 * np.pi * phase / 3.1 + rng.uniform(0, 6))
    joints = _standing_legs(num_frames, frontal, sway)
    pelvis = (joints["near_hip"] + joints["far_hip"]) / 2
    if action == "boxing":
        # punch k (arm k % 2) follows a fast out-and-back profile over one period
        k, u = np.floor(phase).astype(int), phase % 1.0
        reach = amplitude * np.sin(np.pi * np.clip(u / 0.8, 0, 1)) ** 2
        lean = np.radians(6) + np.radians(5) * reach
        _upper_body(joints, pelvis, lean, 0.0)
        for side, parity in (("near", 0), ("far", 1)):
            r = np.where(k % 2 == parity, reach, 0.0)
            shoulder = np.radians(35) + r * np.radians(52)
            _arm(joints, side, shoulder, shoulder + np.radians(125) * (1 - r) + np.radians(6))
        return joints
    _upper_body(joints, pelvis, np.zeros(num_frames), _SHOULDER_HALF)
    cycle = 2 * np.pi * phase
    for side, s in (("near", 1), ("far", -1)):  # near = the right of the image, outward = +x
        if action == "handwaving":
            # both arms raised, swinging in wide arcs above the head
            shoulder = np.radians(128) + amplitude * np.radians(36) * np.sin(cycle)
            forearm = shoulder + amplitude * np.radians(28) * np.sin(cycle - 1.0) + np.radians(12)
        else:
            # handclapping: from arms spread to the sides (open_ = 1) the forearms swing up
            # and inward until the hands meet in front of the chest (open_ = 0)
            open_ = amplitude * (0.5 - 0.5 * np.cos(cycle))
            shoulder = np.radians(18) + open_ * np.radians(50)
            elbow_x = _SHOULDER_HALF + _UPPER_ARM * np.sin(shoulder)
            meet = np.pi - np.arcsin(np.clip((elbow_x - 0.012) / _FOREARM, 0, 1))
            closed = 2 * np.pi - meet  # the forearm points up and inward
            forearm = closed + (shoulder + np.radians(40) - closed) * open_
        angles = (s * shoulder, s * forearm)
        _arm(joints, side, *angles)
    return joints


@dataclass
class Plan:
    """Everything about one video except its pixels."""
    num_frames: int
    ranges: list             # [(start, end)], 0-based, end-exclusive: the subsequences
    p0: np.ndarray           # [T, S, 2] segment starts, frame px
    p1: np.ndarray           # [T, S, 2] segment ends, frame px
    radius: np.ndarray       # [T, S] px
    gray: np.ndarray         # [S] gray levels
    names: list              # [S] segment names, in painting order
    visible: np.ndarray      # [T] bool: some of the figure is in the frame
    center: np.ndarray       # [T, 2] camera
    zoom: np.ndarray         # [T]
    scene: Scene


def _locomotion(look: Look, scene: Scene, gait: int, height: float, rng: np.random.Generator,
                cfg: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict, list[int]]:
    """Walking, jogging or running (``gait``, an index of LOCOMOTION) across the frame and back, once per
    repetition, each crossing followed by a gap: ``(root_x [T], facing [T] (+1 | -1), present [T] bool: the
    figure is crossing, joints {name: [T, 2]}, the frames of each repetition)``."""
    # travel between points where the whole figure is outside the frame at the widest zoom
    half_view = WIDTH / 2 / (1 - scene.zoom_amplitude) + 0.5 * height + 4
    direction = rng.choice((-1, 1))
    xs, phases, facing, lengths, present = [], [], [], [], []
    phase0 = rng.uniform()
    for _ in range(cfg["repetitions"]):
        speed = (_GAIT_SPEED[gait] * look.speed[gait] * rng.uniform(0.95, 1.05)
                 * cfg["locomotion_speedup"][gait] * height / 68)
        cadence = _GAIT_CADENCE[gait] * look.cadence * rng.uniform(0.96, 1.04)
        n = int(math.ceil(2 * half_view / speed))
        gap = int(rng.integers(*cfg["gap_frames"], endpoint=True))
        x = WIDTH / 2 + direction * (-half_view + speed * np.arange(n + gap))
        xs.append(x)
        phases.append(phase0 + cadence / FPS * np.arange(n + gap))
        phase0 = phases[-1][-1] + rng.uniform()
        facing.append(np.full(n + gap, direction))
        present.append(np.arange(n + gap) < n)
        lengths.append(n + gap)
        direction = -direction
    phase = np.concatenate(phases)
    return np.concatenate(xs), np.concatenate(facing), np.concatenate(present), _gait(look, gait, phase), lengths


def _hand_motion(look: Look, action: str, rng: np.random.Generator,
                 cfg: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict, list[int]]:
    """Boxing, handwaving or handclapping in place, at a rate and amplitude that change from one repetition to
    the next: ``(root_x [T], facing [T], present [T] (all True), joints {name: [T, 2]}, the frames of each
    repetition)``."""
    reps = cfg["repetitions"]
    lengths = [int(rng.integers(*cfg["repetition_frames"], endpoint=True)) for _ in range(reps)]
    base_rate = {"boxing": 2.2, "handwaving": 1.15, "handclapping": 1.8}[action] * look.hand_rate
    rate = _smooth_steps(base_rate * rng.uniform(0.85, 1.15, reps), lengths)
    amplitude = _smooth_steps(look.hand_amplitude * rng.uniform(0.8, 1.1, reps), lengths).clip(0.5, 1.2)
    phase = rng.uniform() + np.cumsum(rate) / FPS
    joints = _hand_action(look, action, phase, amplitude, rng)
    num = sum(lengths)
    root_x = np.full(num, WIDTH / 2 + rng.uniform(-22, 22))
    side_facing = rng.choice((-1, 1))
    facing = np.full(num, 1 if action in FRONTAL else side_facing)
    return root_x, facing, np.ones(num, bool), joints, lengths


def _segments(look: Look, scene: Scene, action: str, scenario: int) -> tuple[list, np.ndarray, np.ndarray]:
    """The figure's segments in painting order (rows of the segment table; a coat in scenario 3), their gray
    levels [S] under the scene's light and their radii [S] in units of the figure's height."""
    coat = scenario == 3
    table = [row for row in (_FRONT_SEGMENTS if action in FRONTAL else _SIDE_SEGMENTS)
             if coat or row[0] != "coat"]
    light = scene.figure_light
    colors = {"shirt": look.shirt, "trousers": look.trousers, "head": look.head, "shoes": look.shoes,
              "coat": look.coat}
    if coat:
        colors["shirt"] = look.coat
    colors = {k: min(255.0, v * light) for k, v in colors.items()}
    colors.update(shirt_far=colors["shirt"] * 0.85, trousers_far=colors["trousers"] * 0.85)
    gray = np.array([colors[c] for *_, c in table], np.float32)
    radius_units = np.array([r for _, _, _, r, _ in table])
    factors = np.array([look.build if name in ("torso", "coat") else 1.0 if name == "head" else look.limb
                        for name, *_ in table])
    radius_units = radius_units * factors
    if coat:  # a coat widens the torso and hangs to mid-thigh
        torso = [row[0] for row in table].index("torso")
        radius_units[torso] *= 1.25
        radius_units[torso + 1] = radius_units[torso] * 1.05
    return table, gray, radius_units


def _subsequences(action: str, lengths: list[int], visible: np.ndarray) -> list[tuple[int, int]]:
    """The annotated ranges (0-based, end-exclusive): each repetition of a hand action; the frames of each
    crossing in which some of the figure is in the frame (``visible`` [T]) for locomotion."""
    if action not in LOCOMOTION:
        starts = np.cumsum([0] + lengths)
        return [(int(s), int(e)) for s, e in zip(starts[:-1], starts[1:])]
    ranges, start = [], 0
    for n in lengths:
        idx = np.flatnonzero(visible[start:start + n])
        ranges.append((start + int(idx[0]), start + int(idx[-1]) + 1))
        start += n
    return ranges


def plan_video(person: int, action: str, scenario: int, seed: int = 0, preset: str = "full") -> Plan:
    """The motion, camera and subsequences of one video (cheap: no pixels)."""
    cfg = PRESETS[preset]
    look = person_look(person, seed)
    scene = scene_params(person, scenario, seed)
    rng = _rng(seed, person, ACTIONS.index(action), scenario, _MOTION)
    height = look.height * scene.scale
    if action in LOCOMOTION:
        root_x, facing, present, joints, lengths = _locomotion(look, scene, LOCOMOTION.index(action), height, rng, cfg)
    else:
        root_x, facing, present, joints, lengths = _hand_motion(look, action, rng, cfg)
    num_frames = len(root_x)
    table, gray, radius_units = _segments(look, scene, action, scenario)

    # local (units of H, x forward, y up) -> world px -> frame px
    center, zoom = camera_path(scene, num_frames)
    flip = np.stack([facing, -np.ones(num_frames)], -1)[:, None, :]           # [T, 1, 2]
    origin = np.stack([root_x, np.full(num_frames, scene.ground_y)], -1)[:, None, :]
    a = np.stack([joints[j] for _, j, _, _, _ in table], 1)                    # [T, S, 2]
    b = np.stack([joints[j] for _, _, j, _, _ in table], 1)
    frame_center = np.array([WIDTH / 2, HEIGHT / 2])
    def to_frame(p):
        return (origin + flip * p * height - center[:, None]) * zoom[:, None, None] + frame_center

    p0, p1 = to_frame(a), to_frame(b)
    radius = radius_units[None, :] * height * zoom[:, None]                    # [T, S]
    lo = np.minimum(p0, p1) - radius[..., None] - 1
    hi = np.maximum(p0, p1) + radius[..., None] + 1
    visible = present & (hi[..., 0].max(1) > 0) & (lo[..., 0].min(1) < WIDTH) \
        & (hi[..., 1].max(1) > 0) & (lo[..., 1].min(1) < HEIGHT)
    return Plan(num_frames, _subsequences(action, lengths, visible), p0.astype(np.float32), p1.astype(np.float32),
                radius.astype(np.float32), gray, [row[0] for row in table], visible, center, zoom, scene)


def sequences(person: int, action: str, scenario: int, seed: int = 0, preset: str = "full") -> list:
    """The subsequences of one video: ``[(start, end), ...]``, 0-based, end-exclusive."""
    return plan_video(person, action, scenario, seed, preset).ranges


# ----------------------------------------------------------------------------- pixels


_EDGE = 1.6  # px over which a capsule's edge fades, for a slightly blurred look


def _draw_capsules(frames: np.ndarray, p0: np.ndarray, p1: np.ndarray, radius: np.ndarray,
                   gray: np.ndarray) -> None:
    """Paints one anti-aliased capsule per frame and segment into ``frames``, in place.

    frames: [T, H, W] float32; p0, p1: [T, S, 2] segment ends (x, y) in px; radius: [T, S];
    gray: [S]. Segments are painted in order (later ones cover earlier ones), each one
    for all frames at once, inside a window that holds its bounding box in every frame.
    """
    num_frames, height, width = frames.shape
    t_index = np.arange(num_frames)[:, None, None]
    for s in range(p0.shape[1]):
        a, b, r = p0[:, s], p1[:, s], radius[:, s]
        lo = np.floor(np.minimum(a, b) - r[:, None] - 1).astype(int)            # [T, 2]
        size = np.ceil(np.maximum(a, b) + r[:, None] + 1).astype(int) - lo
        win_w, win_h = min(size[:, 0].max(), width), min(size[:, 1].max(), height)
        # shifting a window to lie inside the frame keeps the in-frame part of the capsule
        x0 = np.clip(lo[:, 0], 0, width - win_w)
        y0 = np.clip(lo[:, 1], 0, height - win_h)
        xs = x0[:, None] + np.arange(win_w)                                      # [T, w]
        ys = y0[:, None] + np.arange(win_h)                                      # [T, h]
        px = (xs + 0.5 - a[:, :1])[:, None, :].astype(np.float32)                # [T, 1, w]
        py = (ys + 0.5 - a[:, 1:])[:, :, None].astype(np.float32)                # [T, h, 1]
        dx, dy = (b - a)[:, 0, None, None], (b - a)[:, 1, None, None]            # [T, 1, 1]
        t = np.clip((px * dx + py * dy) / np.maximum(dx * dx + dy * dy, 1e-6), 0, 1)
        dist = np.sqrt((px - t * dx) ** 2 + (py - t * dy) ** 2)                  # [T, h, w]
        coverage = np.clip((r[:, None, None] - dist) / _EDGE + 0.5, 0, 1)  # soft edge: lens blur
        index = (t_index, ys[:, :, None], xs[:, None, :])
        region = frames[index]
        frames[index] = region + coverage * (gray[s] - region)


def render_video(person: int, action: str, scenario: int, seed: int = 0, preset: str = "full",
                 figure: bool = True) -> np.ndarray:
    """The frames of one video, uint8 [T, 120, 160] (before lossy encoding).

    ``figure=False`` renders the same video without the person: the scene alone, with the
    same camera and noise.
    """
    plan = plan_video(person, action, scenario, seed, preset)
    world = background(person, scenario, seed)
    t = plan.num_frames
    # camera: frame px -> world px (nearest), one separable lookup per frame
    cols = (np.arange(WIDTH) + 0.5 - WIDTH / 2)[None] / plan.zoom[:, None] + plan.center[:, :1] + _MARGIN_X
    rows = (np.arange(HEIGHT) + 0.5 - HEIGHT / 2)[None] / plan.zoom[:, None] + plan.center[:, 1:] + _MARGIN_Y
    cols = np.clip(cols.astype(int), 0, world.shape[1] - 1)
    rows = np.clip(rows.astype(int), 0, world.shape[0] - 1)
    frames = world[rows[:, :, None], cols[:, None, :]]                        # [T, H, W]
    if figure and plan.visible.any():
        shown = np.flatnonzero(plan.visible)
        drawn = frames[shown]
        _draw_capsules(drawn, plan.p0[shown], plan.p1[shown], plan.radius[shown], plan.gray)
        frames[shown] = drawn
    # lens and sensor: vignetting, then noise from a bank of noise frames drawn at random
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    r2 = ((xx - WIDTH / 2) / (WIDTH / 2)) ** 2 + ((yy - HEIGHT / 2) / (WIDTH / 2)) ** 2
    frames *= (1 - plan.scene.vignette * r2).astype(np.float32)
    noise_rng = _rng(seed, person, scenario, _NOISE)
    bank = plan.scene.noise_sigma * noise_rng.standard_normal((_NOISE_BANK, HEIGHT, WIDTH), dtype=np.float32)
    bank += 0.5  # rounds to nearest when cast to uint8 below
    for frame, k in zip(frames, noise_rng.integers(0, _NOISE_BANK, t)):  # in place: no [T, H, W] temporary
        frame += bank[k]
    return np.clip(frames, 0, 255, out=frames).astype(np.uint8)


def write_video(frames: np.ndarray, path: str | Path) -> None:
    """Encodes uint8 frames [T, 120, 160] as an mpeg4 AVI at 25 fps, atomically (:func:`src.files.atomic_path`)."""
    import av
    chroma = np.full((HEIGHT // 2, WIDTH), 128, np.uint8)  # yuv420p: gray has neutral U and V
    with atomic_path(path) as tmp, av.open(str(tmp), "w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.bit_rate = BIT_RATE
        for frame in frames:
            packet = stream.encode(av.VideoFrame.from_ndarray(np.concatenate([frame, chroma]), format="yuv420p"))
            container.mux(packet)
        container.mux(stream.encode())


# ----------------------------------------------------------------------------- dataset


def video_path(out_dir: str | Path, person: int, action: str, scenario: int) -> Path:
    return Path(out_dir) / action / f"{video_id(person, action, scenario)}_uncomp.avi"


def preset_videos(preset: str = "full") -> list[tuple[int, str, int]]:
    """``(person, action, scenario)`` of every video of a preset, in KTH order."""
    if preset not in PRESETS:
        raise ValueError(f"unknown synthetic preset {preset!r}; choose one of {', '.join(PRESETS)}")
    cfg = PRESETS[preset]
    return [(p, a, d) for p in cfg["persons"] for a in ACTIONS for d in cfg["scenarios"]
            if video_id(p, a, d) not in MISSING_VIDEOS]


def _make_video(job: tuple) -> tuple[str, list]:
    """Writes one video unless it exists; returns its id and subsequences."""
    out_dir, person, action, scenario, seed, preset = job
    path = video_path(out_dir, person, action, scenario)
    if not path.is_file():
        write_video(render_video(person, action, scenario, seed, preset), path)
    return video_id(person, action, scenario), sequences(person, action, scenario, seed, preset)


def generate(out_dir: str | Path, preset: str = "full", seed: int = 0, workers: int | None = None) -> Path:
    """Writes the synthetic twin under ``out_dir`` in KTH's raw layout; returns ``out_dir``.

    Videos already there are skipped, so an interrupted run resumes (the temp files of its killed
    writers removed). Every video depends
    only on (seed, person, action, scenario), whatever the number of ``workers``
    (default: all cores).
    """
    out_dir = Path(out_dir)
    videos = preset_videos(preset)
    meta_path = out_dir / "synthetic.json"
    meta = {"preset": preset, "seed": seed, "generator_version": GENERATOR_VERSION,
            "videos": len(videos), "size": [WIDTH, HEIGHT], "fps": FPS, "codec": "mpeg4"}
    if meta_path.is_file():
        old = json.loads(meta_path.read_text())
        if any(old.get(k) != meta[k] for k in ("preset", "seed", "generator_version")):
            raise ValueError(
                f"{out_dir} holds another synthetic twin (preset {old.get('preset')!r}, seed {old.get('seed')}, "
                f"version {old.get('generator_version')}); make this one in another folder, or delete {out_dir}")
    for folder in (out_dir, *(out_dir / action for action in ACTIONS)):
        folder.mkdir(parents=True, exist_ok=True)
        remove_temp_files(folder)  # left by writers of a killed run
    with atomic_write(meta_path, "w") as f:  # first, so that a resumed run can check it
        f.write(json.dumps(meta, indent=2) + "\n")
    jobs = [(out_dir, p, a, d, seed, preset) for p, a, d in videos]
    workers = workers or os.cpu_count() or 1
    ranges = {}
    progress = tqdm(total=len(jobs), desc=f"synthetic KTH ({preset})", unit="video")
    if workers == 1:
        for vid, seq in map(_make_video, jobs):
            ranges[vid] = seq
            progress.update()
    else:
        with multiprocessing.get_context("forkserver").Pool(workers) as pool:  # not fork: see src.data.prepare
            for vid, seq in pool.imap_unordered(_make_video, jobs, chunksize=2):
                ranges[vid] = seq
                progress.update()
    progress.close()
    order = [video_id(p, a, d) for p, a, d in videos]
    with atomic_write(out_dir / "00sequences.txt", "w") as f:
        f.write(format_sequences({vid: ranges[vid] for vid in order}))
    return out_dir


# ----------------------------------------------------------------------------- pictures


def _read_gray(path: Path) -> np.ndarray:
    import av
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="gray") for f in container.decode(video=0)])


def save_frame_grid(raw_dir: str | Path, path: str | Path, rows: list[tuple] | None = None,
                    num_frames: int = 8) -> Path:
    """Saves a PNG of ``num_frames`` evenly spaced frames per video, one row per video.

    ``rows``: ``(person, action, scenario)`` keys; default: every (action, scenario) of the
    lowest-numbered person in ``raw_dir``. Compare it with ``kth_samples/reference_frames.png``.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch
    from torchvision.utils import make_grid
    raw_dir, path = Path(raw_dir), Path(path)
    found = {}
    for f in sorted(raw_dir.glob("*/*.avi")):
        info = parse_video_name(f.name)
        if info is not None:
            found[(info["person"], info["action"], info["scenario"])] = f
    if not found:
        raise FileNotFoundError(f"{raw_dir}: no KTH-named .avi videos; make them with "
                                f"'python -m src.data.synthetic --out {raw_dir}'")
    if rows is None:
        person = min(p for p, _, _ in found)
        rows = [(person, a, d) for a in ACTIONS for d in SCENARIOS if (person, a, d) in found]
    tiles, labels = [], []
    for key in rows:
        if key not in found:
            raise FileNotFoundError(f"{raw_dir}: no video {video_id(*key)}")
        frames = _read_gray(found[key])
        pick = np.linspace(0, len(frames) - 1, num_frames).round().astype(int)
        tiles.append(torch.from_numpy(frames[pick]))
        labels.append(video_id(*key))
    grid = make_grid(torch.cat(tiles)[:, None].float() / 255, nrow=num_frames, padding=2, pad_value=1.0)
    fig, ax = plt.subplots(figsize=(num_frames * 1.6 + 1.6, len(rows) * 1.2 + 0.3), dpi=100)
    ax.imshow(grid[0].numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks([(HEIGHT + 2) * (i + 0.5) for i in range(len(rows))], labels, fontsize=7)
    ax.set_xticks([])
    with atomic_path(path) as tmp:  # the format from the target's suffix: the temp file's is .tmp
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", bbox_inches="tight")
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m src.data.synthetic", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="data/synth_raw", help="output folder (default: data/synth_raw)")
    parser.add_argument("--preset", default="full", choices=list(PRESETS),
                        help="full: 25 persons x 6 actions x 4 scenarios (default); small; tiny (tests)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None, help="parallel processes (default: all cores)")
    parser.add_argument("--grid", default=None, help="also save a PNG grid of frames to this path")
    args = parser.parse_args(argv)
    try:
        out = generate(args.out, preset=args.preset, seed=args.seed, workers=args.workers)
        if args.grid:
            print(f"grid: {save_frame_grid(out, args.grid)}")
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    main()
