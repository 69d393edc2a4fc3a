"""src.data.sources.kth: names, splits and the 00sequences.txt format."""

from src.data.sources import kth


def test_parse_video_name_accepts_kth_names_and_rejects_others():
    info = kth.parse_video_name("walking/person07_handclapping_d3_uncomp.avi")
    assert info == {"video_id": "person07_handclapping_d3", "person": 7, "action": "handclapping",
                    "label": 5, "scenario": 3}
    assert kth.parse_video_name("person07_handclapping_d3")["label"] == kth.ACTIONS.index("handclapping")
    for bad in ("person7_boxing_d1_uncomp.avi", "person01_swimming_d1_uncomp.avi",
                "person01_boxing_d5_uncomp.avi", "README.md"):
        assert kth.parse_video_name(bad) is None


def test_kth_has_599_videos_and_disjoint_splits():
    assert len(kth.all_video_ids()) == 599
    assert "person13_handclapping_d3" not in kth.all_video_ids()
    assert set(kth.TRAIN_PERSONS).isdisjoint(kth.TEST_PERSONS)
    assert set(kth.DEFAULT_VAL_PERSONS) <= set(kth.TRAIN_PERSONS)
    assert sorted(kth.TRAIN_PERSONS + kth.TEST_PERSONS) == list(kth.PERSONS)


def test_sequences_round_trip_and_are_zero_based(tmp_path):
    sequences = {"person01_boxing_d1": [(0, 10), (19, 40)], "person02_walking_d4": [(4, 5)]}
    path = tmp_path / "00sequences.txt"
    path.write_text("header line\n\n" + kth.format_sequences(sequences))
    assert kth.parse_sequences(path) == sequences
    assert "1-10, 20-40" in path.read_text()


def test_real_sequences_file(kth_samples):
    sequences = kth.parse_sequences(kth_samples / "00sequences.txt")
    assert len(sequences) == 599  # every KTH video; the missing one is marked *missing*
    assert "person13_handclapping_d3" not in sequences
    assert all(len(r) >= 1 and all(0 <= a < b for a, b in r) for r in sequences.values())
