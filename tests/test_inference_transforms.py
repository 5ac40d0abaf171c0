import numpy as np
import pytest
import torch

from tamvt.inference.transforms import FrameTransforms, merge_masks, prepare_frame, prepare_mask, resized_shape


@pytest.mark.parametrize(
    "size,short,cap,expected",
    [
        ((480, 854), 480, 1110, (480, 854)),  # already at the short side
        ((720, 1280), 480, 1110, (480, 853)),  # int(480 * 1280 / 720) = 853
        (
            (480, 854),
            624,
            1110,
            (624, 1110),
        ),  # 854/480*624 = 1110.2 > 1110: target = round(623.89) = 624, w = int(1110.2)
        ((1080, 1920), 624, 1110, (624, 1109)),  # 1920/1080*624 = 1109.3 <= 1110
        (
            (500, 2000),
            480,
            1110,
            (278, 1112),
        ),  # 1920 > 1110: target = round(277.5) = 278 (banker's), w = 278*4: the cap is approximate, as in DETR
        ((1280, 720), 480, None, (853, 480)),  # portrait
        ((100, 200), None, 1110, (100, 200)),  # no resizing
    ],
)
def test_resized_shape_follows_detr_rule(size, short, cap, expected):
    assert resized_shape(size, short, cap) == expected


def test_prepare_frame_normalises_like_torchvision():
    frame = np.zeros((4, 6, 3), np.uint8)
    frame[..., 0] = 255
    x = prepare_frame(frame, (4, 6))
    assert x.shape == (3, 4, 6)
    assert torch.allclose(x[0], torch.full((4, 6), (1 - 0.485) / 0.229))
    assert torch.allclose(x[1], torch.full((4, 6), -0.456 / 0.224))


def test_prepare_mask_nearest():
    m = np.zeros((4, 4), np.uint8)
    m[:2, :2] = 1
    out = prepare_mask(m, (8, 8))
    assert out.shape == (1, 8, 8) and out.sum() == 16 and out[0, :4, :4].all()


def test_merge_argmax_and_first_wins():
    p = torch.tensor([[[0.9, 0.6, 0.2]], [[0.95, 0.7, 0.4]]])  # (K=2, 1, 3)
    assert merge_masks(p, [3, 7], "argmax").tolist() == [[7, 7, 0]]
    assert merge_masks(p, [3, 7], "first-wins").tolist() == [[3, 3, 0]]
    # first-wins is by id, not by position
    assert merge_masks(p, [7, 3], "first-wins").tolist() == [[3, 3, 0]]
    assert merge_masks(torch.zeros(0, 2, 2), [], "argmax").tolist() == [[0, 0], [0, 0]]


def test_merge_argmax_is_the_argmax_over_background_and_objects_ties_to_the_earlier():
    g = torch.Generator().manual_seed(0)
    for k in (1, 2, 5):
        ids = [9, 2, 200, 4, 1][:k]
        p = (torch.rand(k, 24, 31, generator=g) * 4).round() / 4  # quarters: many ties, many exactly 0.5
        for thr in (0.5, 0.25):
            scores = torch.cat([torch.full((1, 24, 31), thr), p])  # what argmax sees: background first
            want = torch.tensor([0, *ids])[scores.argmax(0)]
            assert merge_masks(p, ids, "argmax", thr).tolist() == want.tolist()
    # ties: an object equal to the background stays background; two equal objects: the earlier one
    tie = torch.tensor([[[0.5, 0.75]], [[0.5, 0.75]]])
    assert merge_masks(tie, [5, 6], "argmax").tolist() == [[0, 5]]


def test_merge_argmax_background_threshold():
    p = torch.tensor([[[0.9, 0.6, 0.2]]])
    assert merge_masks(p, [4], "argmax", bg_threshold=0.7).tolist() == [[4, 0, 0]]
    assert merge_masks(p, [4], "argmax", bg_threshold=0.1).tolist() == [[4, 4, 4]]


def test_frame_transforms_are_the_functions_under_one_config():
    """FrameTransforms (the predictor's): inputs at the resize rule's size, probabilities back at the
    frame's, merging by the config's policy."""
    from tamvt.config import InferenceConfig

    t = FrameTransforms.from_config(
        InferenceConfig(short_side=4, max_long_side=1110, merge="first-wins", bg_threshold=0.3)
    )
    assert t == FrameTransforms(4, 1110, "first-wins", 0.3)
    frame = np.arange(8 * 12 * 3, dtype=np.uint8).reshape(8, 12, 3)
    assert t.input_size((8, 12)) == (4, 6)
    assert torch.equal(t.frame(frame), prepare_frame(frame, (4, 6)))
    mask = np.zeros((8, 12), bool)
    mask[:4, :6] = True
    assert torch.equal(t.mask(mask), prepare_mask(mask, (4, 6)))
    logits = torch.tensor([[[-5.0, 5.0], [5.0, -5.0]]])  # (K=1, 2, 2) at stride 4
    probs = t.probs(logits, (8, 8))
    assert probs.shape == (1, 8, 8) and probs[0, 0, -1] > 0.99 and probs[0, 0, 0] < 0.01
    p = torch.tensor([[[0.9, 0.6, 0.2]], [[0.95, 0.7, 0.4]]])
    assert t.merged(p, [3, 7]).tolist() == [[3, 3, 0]]
    assert FrameTransforms().merged(p, [3, 7]).tolist() == merge_masks(p, [3, 7]).tolist() == [[7, 7, 0]]
