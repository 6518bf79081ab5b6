"""The official InstColorization inference, re-implemented straight in torch: the reference to match.

A line-by-line port of ``image_util.get_box_info``, ``WeightGenerator.forward`` and
``FusionGenerator.forward`` (ericsujw/InstColorization, MIT): one image at a time, the boxes placed
one at a time with ``F.interpolate`` + ``F.pad``, the softmax over N + 1 taken on the stacked maps.
colorrt's runtime splits this differently (see :class:`~colorrt.models.instcolorization.WeightGenerator`);
tests check the two agree, and the benchmark times this path as the baseline.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from colorrt.models.instcolorization import (
    BACKGROUND_LOGIT,
    LAYERS,
    FusionGenerator,
    InstColorization,
    WeightGenerator,
)

LEVELS = 4  # box geometry at size, size/2, size/4, size/8


def get_box_info(box: Sequence[int], image_size: tuple[int, int], final_size: int) -> list[int]:
    """``[L_pad, R_pad, T_pad, B_pad, rh, rw]`` of an integer xyxy box; ``image_size`` is (W, H).

    As in the official code ``rh`` is the box's width and ``rw`` its height at ``final_size``.
    """
    startx = int(box[0] / image_size[0] * final_size)
    starty = int(box[1] / image_size[1] * final_size)
    endx = int(box[2] / image_size[0] * final_size)
    endy = int(box[3] / image_size[1] * final_size)
    rh = endx - startx
    rw = endy - starty
    if rh < 1:
        if final_size - endx > 1:
            endx += 1
        else:
            startx -= 1
        rh = 1
    if rw < 1:
        if final_size - endy > 1:
            endy += 1
        else:
            starty -= 1
        rw = 1
    return [startx, final_size - endx, starty, final_size - endy, rh, rw]


def box_info_list(
    boxes: Sequence[Sequence[int]], image_size: tuple[int, int], size: int
) -> list[list[list[int]]]:
    """The official ``[box_info, box_info_2x, box_info_4x, box_info_8x]``."""
    return [[get_box_info(b, image_size, size // 2**level) for b in boxes] for level in range(LEVELS)]


def _resize_and_pad(maps: torch.Tensor, info: Sequence[int]) -> torch.Tensor:
    maps = F.interpolate(maps, size=(info[5], info[4]), mode="bilinear")
    return F.pad(maps, (info[0], info[1], info[2], info[3]), "constant", 0)


def weight_generator_forward(
    layer: WeightGenerator, instance_feature: torch.Tensor, bg_feature: torch.Tensor, box_info: Sequence
) -> torch.Tensor:
    """``WeightGenerator.forward`` of the official code (one image, boxes placed one at a time)."""
    mask_list = []
    feature_map_list = []
    mask_sum_for_pred = torch.zeros_like(bg_feature)[:1, :1]
    for i in range(instance_feature.shape[0]):
        tmp_crop = torch.unsqueeze(instance_feature[i], 0)
        conv_tmp_crop = layer.simple_instance_conv(tmp_crop)
        pred_mask = _resize_and_pad(conv_tmp_crop, box_info[i])
        tmp_crop = _resize_and_pad(tmp_crop, box_info[i])
        mask = torch.zeros_like(bg_feature)[:1, :1]
        info = box_info[i]
        mask[0, 0, info[2] : info[2] + info[5], info[0] : info[0] + info[4]] = 1.0
        mask_sum_for_pred = torch.clamp(mask_sum_for_pred + mask, 0.0, 1.0)
        mask_list.append(pred_mask)
        feature_map_list.append(tmp_crop)
    pred_bg_mask = layer.simple_bg_conv(bg_feature)
    mask_list.append(pred_bg_mask + (1 - mask_sum_for_pred) * BACKGROUND_LOGIT)
    weights = torch.softmax(torch.cat(mask_list, 1), dim=1)
    feature_map_list.append(bg_feature)
    stacked = torch.cat(feature_map_list, 0)
    out = stacked * weights.permute(1, 0, 2, 3).contiguous()
    return torch.sum(out, 0, keepdim=True)


def fusion_forward(
    gf: FusionGenerator, x: torch.Tensor, features: Sequence[torch.Tensor], infos: Sequence
) -> torch.Tensor:
    """``FusionGenerator.forward``: tanh ab / 110 of one image from G's features of its crops."""
    layers = gf.weight_layers()

    def fuse(i: int, bg: torch.Tensor) -> torch.Tensor:
        return weight_generator_forward(layers[i], features[i], bg, infos[LAYERS[i][2]])

    return gf.trunk(x, fuse)


@torch.no_grad()
def official_colorize(
    model: InstColorization,
    image: torch.Tensor,
    crops: torch.Tensor | None,
    boxes: Sequence[Sequence[int]],
    image_size: tuple[int, int],
) -> torch.Tensor:
    """tanh ab / 110 (1, 2, S, S) of one image as the official test script computes it.

    ``image``: (1, 4, S, S) network input of the full image; ``crops``: (N, 4, S, S) of the boxes;
    ``boxes``: integer xyxy boxes in the original image; ``image_size``: its (W, H). No box: GComp.
    """
    if not len(boxes):
        return model.gcomp(image)
    _, features = model.g(crops)
    infos = box_info_list(boxes, image_size, image.shape[-1])
    return fusion_forward(model.gf, image, features, infos)
