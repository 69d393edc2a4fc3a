"""The synthetic KTH twin: layout, annotations, determinism, idempotency, and a scene free of label cues."""
import json
import os

import av
import numpy as np
import pytest

from src.data.sources.kth import ACTIONS, parse_sequences, parse_video_name
from src.data.synthetic import (
    _GAIT_SPEED,
    GENERATOR_VERSION,
    HEIGHT,
    LOCOMOTION,
    WIDTH,
    generate,
    person_look,
    plan_video,
    preset_videos,
    render_video,
    save_frame_grid,
    sequences,
    video_path,
    write_video,
)
from src.files import temp_path


def decode(path):
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="gray") for f in container.decode(video=0)])


def test_tiny_preset_covers_every_split_for_every_action():
    videos = preset_videos("tiny")
    for action in ACTIONS:
        persons = {p for p, a, _ in videos if a == action}
        assert persons & set(range(1, 15)), action   # train
        assert persons & {15, 16}, action            # val
        assert persons & set(range(17, 26)), action  # test


def test_full_preset_mirrors_kth():
    videos = preset_videos("full")
    assert len(videos) == 599
    assert (13, "handclapping", 3) not in videos


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown synthetic preset 'huge'"):
        preset_videos("huge")


def test_tiny_layout_names_and_metadata(tiny_raw):
    expected = {video_path(tiny_raw, p, a, d) for p, a, d in preset_videos("tiny")}
    found = set(tiny_raw.glob("*/*"))
    assert found == expected  # no temp files left behind either
    for path in found:
        info = parse_video_name(path.name)
        assert info is not None and path.parent.name == info["action"]
    meta = json.loads((tiny_raw / "synthetic.json").read_text())
    assert (meta["preset"], meta["seed"], meta["generator_version"]) == ("tiny", 0, GENERATOR_VERSION)


def test_tiny_videos_decode_and_match_their_sequences(tiny_raw):
    ranges = parse_sequences(tiny_raw / "00sequences.txt")
    assert set(ranges) == {parse_video_name(p.name)["video_id"] for p in tiny_raw.glob("*/*.avi")}
    for person, action, scenario in [(1, "walking", 1), (15, "running", 4), (17, "handclapping", 1)]:
        path = video_path(tiny_raw, person, action, scenario)
        frames = decode(path)
        plan = plan_video(person, action, scenario, seed=0, preset="tiny")
        assert frames.shape == (plan.num_frames, HEIGHT, WIDTH)
        vid = parse_video_name(path.name)["video_id"]
        assert ranges[vid] == plan.ranges
        assert all(0 <= a < b <= len(frames) for a, b in ranges[vid])
        # lossy, but close to what was rendered
        rendered = render_video(person, action, scenario, seed=0, preset="tiny").astype(float)
        assert np.abs(frames - rendered).mean() < 6


def test_every_annotated_range_holds_a_clip_of_28_frames_in_most_videos():
    lengths = [b - a for p, act, d in preset_videos("full") if p in (3, 18) for a, b in sequences(p, act, d)]
    assert len(lengths) == 2 * 6 * 4 * 4
    assert np.mean(np.array(lengths) >= 28) > 0.95


@pytest.mark.parametrize("action", LOCOMOTION)
def test_locomotion_frames_outside_ranges_are_empty(action):
    frames = render_video(2, action, 1, seed=0, preset="tiny").astype(int)
    scene_only = render_video(2, action, 1, seed=0, preset="tiny", figure=False).astype(int)
    ranges = sequences(2, action, 1, seed=0, preset="tiny")
    inside = np.zeros(len(frames), bool)
    for a, b in ranges:
        inside[a:b] = True
    assert (~inside).sum() >= 6  # there are empty frames between the crossings
    assert np.array_equal(frames[~inside], scene_only[~inside])
    figure_pixels = (np.abs(frames - scene_only) > 15).sum(axis=(1, 2))
    assert np.median(figure_pixels[inside]) > 100  # the person is there during the crossings
    # and crosses the frame: it enters on one side and leaves on the other
    for a, b in ranges:
        columns = [np.flatnonzero((np.abs(frames[t] - scene_only[t]) > 15).any(0)) for t in (a + 2, b - 3)]
        assert abs(columns[0].mean() - columns[1].mean()) > 80


def test_hand_actions_fill_the_video():
    for action in ("boxing", "handwaving", "handclapping"):
        plan = plan_video(1, action, 2, seed=0, preset="small")
        assert plan.ranges[0][0] == 0 and plan.ranges[-1][1] == plan.num_frames
        assert all(b == c for (_, b), (c, _) in zip(plan.ranges, plan.ranges[1:]))
        assert plan.visible.all()


def test_hand_actions_move_their_arms():
    for action in ("boxing", "handwaving", "handclapping"):
        frames = render_video(15, action, 1, seed=0, preset="tiny").astype(int)
        scene_only = render_video(15, action, 1, seed=0, preset="tiny", figure=False).astype(int)
        masks = np.abs(frames - scene_only) > 15
        changed = (masks[1:] ^ masks[:-1]).sum(axis=(1, 2))
        assert changed.mean() > 10, action


def test_clapping_hands_meet_and_waving_hands_rise_above_the_head():
    clap = plan_video(1, "handclapping", 1, seed=0, preset="full")
    near, far = clap.names.index("near_forearm"), clap.names.index("far_forearm")  # forearms end at the hands
    gap = np.abs(clap.p1[:, near, 0] - clap.p1[:, far, 0])
    assert gap.min() < 4 and gap.max() > 25
    wave = plan_video(1, "handwaving", 1, seed=0, preset="full")
    head_top = wave.p0[:, wave.names.index("head"), 1] - wave.radius[:, wave.names.index("head")]
    assert (wave.p1[:, near, 1] < head_top).mean() > 0.3  # image y grows downward
    assert (clap.p1[:, near, 1] > clap.p0[:, clap.names.index("head"), 1]).all()  # clapping stays below


def test_gaits_overlap_across_persons():
    speeds = np.array([[_GAIT_SPEED[g] * person_look(p).speed[g] for g in range(3)] for p in range(1, 26)])
    assert speeds[:, 1].max() > speeds[:, 2].min()  # someone's fast jog beats someone's slow run
    assert speeds[:, 0].max() > speeds[:, 1].min() * 0.8


def test_render_is_deterministic_and_depends_on_the_seed():
    a = render_video(17, "jogging", 4, seed=0, preset="tiny")
    b = render_video(17, "jogging", 4, seed=0, preset="tiny")
    c = render_video(17, "jogging", 4, seed=1, preset="tiny")
    assert a.dtype == np.uint8 and a.shape[1:] == (HEIGHT, WIDTH)
    assert np.array_equal(a, b)
    assert a.shape != c.shape or np.abs(a[: len(c)].astype(int) - c[: len(a)]).mean() > 3


def test_generated_video_does_not_depend_on_the_worker(tiny_raw, tmp_path):
    path = tmp_path / "one.avi"
    write_video(render_video(2, "boxing", 4, seed=0, preset="tiny"), path)
    assert np.array_equal(decode(path), decode(video_path(tiny_raw, 2, "boxing", 4)))


def test_background_does_not_depend_on_the_action():
    walking = render_video(2, "walking", 4, seed=0, preset="tiny").astype(int)
    boxing = render_video(2, "boxing", 4, seed=0, preset="tiny").astype(int)
    scene_walking = render_video(2, "walking", 4, seed=0, preset="tiny", figure=False)
    scene_boxing = render_video(2, "boxing", 4, seed=0, preset="tiny", figure=False)
    n = min(len(scene_walking), len(scene_boxing))
    assert np.array_equal(scene_walking[:n], scene_boxing[:n])  # scene, camera and noise alike
    no_figure = (walking[0] == scene_walking[0]) & (boxing[0] == scene_boxing[0])
    assert no_figure.mean() > 0.8
    assert np.array_equal(walking[0][no_figure], boxing[0][no_figure])
    assert not np.array_equal(render_video(2, "walking", 1, seed=0, preset="tiny", figure=False)[0],
                              scene_walking[0])  # scenarios differ


def test_generate_is_idempotent_and_resumes(tiny_raw):
    videos = sorted(tiny_raw.glob("*/*.avi"))
    before = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in videos}
    sequences_text = (tiny_raw / "00sequences.txt").read_text()
    generate(tiny_raw, preset="tiny", seed=0, workers=1)
    assert {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in videos} == before
    assert (tiny_raw / "00sequences.txt").read_text() == sequences_text
    # an interrupted run leaves a missing video (and maybe a temp file): the next run makes it again
    victim = videos[0]
    original = decode(victim)
    victim.unlink()
    leftover = temp_path(victim)  # the temp file of a writer killed mid-write
    leftover.write_bytes(b"half a video")
    generate(tiny_raw, preset="tiny", seed=0, workers=1)
    assert np.array_equal(decode(victim), original)
    assert not leftover.exists()
    assert {p: p.stat().st_mtime_ns for p in videos if p != victim} == {
        p: before[p][0] for p in videos if p != victim}


def test_generate_refuses_to_mix_twins(tiny_raw):
    with pytest.raises(ValueError, match="holds another synthetic twin"):
        generate(tiny_raw, preset="tiny", seed=1)


def test_frame_grid(tiny_raw, tmp_path):
    import matplotlib.image
    out = save_frame_grid(tiny_raw, tmp_path / "grid.png")
    image = matplotlib.image.imread(out)
    assert image.shape[0] > 6 * 2 * 50 and image.shape[1] > 8 * 80  # 12 rows (6 actions x d1, d4), 8 frames
    with pytest.raises(FileNotFoundError, match="no KTH-named"):
        save_frame_grid(tmp_path, tmp_path / "none.png")
    assert not os.path.exists(tmp_path / "none.png")


def test_cli_reports_bad_input_in_one_line(tiny_raw):
    from src.data.synthetic import main
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tiny_raw), "--preset", "tiny", "--seed", "1"])
    message = str(exit_info.value.code)
    assert message.startswith("error: ") and str(tiny_raw) in message and "\n" not in message
