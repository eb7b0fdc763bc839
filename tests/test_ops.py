"""The method's pure tensor operations, tested without BasicSR models."""
import itertools

import numpy as np
import pytest
import torch

from dukd_arch.ops import (AUGMENTATION_OPS, apply_augmentations, DIHEDRAL_TRANSFORMS, forward_padded,
                           grid_tile_positions, invert_augmentations, inverse_transform, matlab_imresize, pad_to_multiple,
                           sample_augmentations, tiled_forward, transform, zoom_in, zoom_out)


def _all_flag_combinations(batch_repeat=1):
    rows = list(itertools.product([False, True], repeat=len(AUGMENTATION_OPS)))
    assert len(rows) == 16
    return torch.tensor(rows).repeat_interleave(batch_repeat, dim=0)


def test_inverse_is_exact_for_all_16_combinations():
    flags = _all_flag_combinations()
    x = torch.rand(16, 3, 8, 8)
    back = invert_augmentations(apply_augmentations(x, flags), flags)
    assert torch.equal(back, x)


def test_same_order_undo_is_wrong_when_transpose_meets_one_flip():
    # the authors' "inverse" re-applies the ops in forward order; it differs from ours for these draws
    x = torch.rand(1, 3, 6, 6)
    flags = torch.tensor([[False, True, False, True]])  # vflip then transpose
    y = apply_augmentations(x, flags)
    same_order = apply_augmentations(y, flags)
    assert not torch.equal(same_order, x)
    assert torch.equal(invert_augmentations(y, flags), x)


def test_each_op_does_what_its_name_says():
    x = torch.rand(1, 3, 5, 5)
    for j, expected in enumerate([1 - x, x.flip(-2), x.flip(-1), x.transpose(-2, -1)]):
        flags = torch.zeros(1, 4, dtype=torch.bool)
        flags[0, j] = True
        assert torch.allclose(apply_augmentations(x, flags), expected)


def test_sampling_respects_probability_and_enabled_ops():
    g = torch.Generator().manual_seed(0)
    flags = sample_augmentations(20000, 0.3, ops=('vflip', 'transpose'), generator=g)
    rate = flags.float().mean(0)
    assert rate[0] == 0 and rate[2] == 0
    assert abs(rate[1] - 0.3) < 0.02 and abs(rate[3] - 0.3) < 0.02
    with pytest.raises(ValueError, match='unknown'):
        sample_augmentations(2, 0.3, ops=('rotate', ))


def test_transpose_of_non_square_is_a_clear_error():
    with pytest.raises(ValueError, match='square'):
        apply_augmentations(torch.rand(1, 3, 4, 6), torch.tensor([[False, False, False, True]]))


def test_dihedral_transforms_are_8_distinct_and_invertible_on_non_square():
    x = torch.rand(1, 1, 4, 4)
    outs = {tuple(transform(x, ops).flatten().tolist()) for ops in DIHEDRAL_TRANSFORMS}
    assert len(outs) == 8
    y = torch.rand(2, 3, 5, 7)
    for ops in DIHEDRAL_TRANSFORMS:
        assert torch.equal(inverse_transform(transform(y, ops), ops), y)


@pytest.mark.parametrize('scale', [2, 3, 4])
@pytest.mark.parametrize('size', [(48, 48), (37, 50)])
def test_matlab_imresize_matches_basicsr(scale, size):
    from basicsr.utils.matlab_functions import imresize
    rng = np.random.default_rng(scale)
    img = rng.random((size[0], size[1], 3)).astype(np.float64)
    ref = imresize(img, 1 / scale)
    ours = matlab_imresize(torch.from_numpy(img).permute(2, 0, 1)[None], 1 / scale)[0].permute(1, 2, 0).numpy()
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-6)


def test_matlab_imresize_upscale_matches_basicsr():
    from basicsr.utils.matlab_functions import imresize
    img = np.random.default_rng(1).random((10, 12, 3))
    ref = imresize(img, 4)
    ours = matlab_imresize(torch.from_numpy(img).permute(2, 0, 1)[None], 4)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-6)


def test_matlab_imresize_keeps_dtype_and_batches_independently():
    x = torch.rand(4, 3, 24, 24)
    batched = matlab_imresize(x, 0.25)
    assert batched.dtype == torch.float32 and batched.shape == (4, 3, 6, 6)
    for i in range(4):
        assert torch.allclose(batched[i:i + 1], matlab_imresize(x[i:i + 1], 0.25), atol=1e-6)


def test_zoom_out_shape_and_constant_preserved():
    x = torch.full((2, 3, 48, 48), 0.7)
    out = zoom_out(x, 4)
    assert out.shape == (2, 3, 12, 12)
    assert torch.allclose(out, torch.full_like(out, 0.7), atol=1e-6)


def test_grid_tiles_are_grid_cells_shared_by_the_batch():
    hr = torch.arange(2 * 1 * 8 * 8, dtype=torch.float32).view(2, 1, 8, 8)
    g = torch.Generator().manual_seed(3)
    tiles = zoom_in(hr, (4, 4), num_tiles=3, positions='grid', generator=g)
    assert tiles.shape == (6, 1, 4, 4)
    g = torch.Generator().manual_seed(3)
    corners = grid_tile_positions((8, 8), (4, 4), 3, generator=g)
    assert len(set(corners)) == 3 and all(t % 4 == 0 and l % 4 == 0 for t, l in corners)
    for k, (t, l) in enumerate(corners):
        for b in range(2):
            assert torch.equal(tiles[k * 2 + b], hr[b, :, t:t + 4, l:l + 4])


def test_too_many_tiles_is_a_clear_error():
    with pytest.raises(ValueError, match='n_gt_sub'):
        zoom_in(torch.rand(1, 3, 8, 8), (4, 4), num_tiles=5)


def test_random_tiles_are_real_crops_of_their_own_sample():
    hr = torch.rand(3, 3, 16, 16)
    g = torch.Generator().manual_seed(0)
    tiles = zoom_in(hr, (5, 5), num_tiles=2, positions='random', generator=g)
    assert tiles.shape == (6, 3, 5, 5)
    for i, tile in enumerate(tiles):
        src = hr[i % 3]
        found = any(torch.equal(src[:, t:t + 5, l:l + 5], tile) for t in range(12) for l in range(12))
        assert found


def test_pad_to_multiple_and_forward_padded_crop():
    x = torch.rand(1, 3, 12, 10)
    padded, (ph, pw) = pad_to_multiple(x, 8)
    assert padded.shape[-2:] == (16, 16) and (ph, pw) == (4, 6)
    up = torch.nn.Upsample(scale_factor=2, mode='nearest')
    assert torch.equal(forward_padded(up, x, 8, 2), up(x))
    with pytest.raises(ValueError, match='window size'):
        pad_to_multiple(torch.rand(1, 3, 3, 3), 8)


def test_tiled_forward_fixed_window_calls_the_net_on_whole_windows_only():
    """A static-shape network (fixed ONNX input) gets whole windows, shifted inside the image at its borders,
    and the stitched output equals the untiled one when the window leaves the field its context."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.PReLU(), torch.nn.Conv2d(8, 12, 3, padding=1),
                              torch.nn.PixelShuffle(2)).eval()  # receptive radius 2 LR pixels, x2
    shapes = []

    def fixed(x):
        shapes.append(tuple(x.shape[-2:]))
        return net(x)

    x = torch.rand(1, 3, 23, 31)
    with torch.no_grad():
        tiled = tiled_forward(fixed, x, 2, tile=6, overlap=2, window=(10, 10))
        whole = net(x)
    assert set(shapes) == {(10, 10)}
    assert tiled.shape == whole.shape
    assert (tiled - whole).abs().max() < 1e-5
