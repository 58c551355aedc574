"""An independent, plain-PyTorch transcription of the released S3Net (``Dehaze3`` + Res2Net v1b).

Written from the release's description without timm, so the product's network can be checked
against it weight for weight.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class RefBottle2neck(nn.Module):
    def __init__(self, inplanes, planes, stride=1, downsample=None, base_width=26, scale=4, stype="normal"):
        super().__init__()
        width = int(math.floor(planes * (base_width / 64.0)))
        self.conv1 = nn.Conv2d(inplanes, width * scale, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width * scale)
        self.nums = scale - 1
        if stype == "stage":
            self.pool = nn.AvgPool2d(3, stride=stride, padding=1)
        self.convs = nn.ModuleList(nn.Conv2d(width, width, 3, stride, 1, bias=False) for _ in range(self.nums))
        self.bns = nn.ModuleList(nn.BatchNorm2d(width) for _ in range(self.nums))
        self.conv3 = nn.Conv2d(width * scale, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = downsample
        self.stype, self.width = stype, width

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        spx = torch.split(out, self.width, 1)
        for i in range(self.nums):
            sp = spx[i] if (i == 0 or self.stype == "stage") else sp + spx[i]
            sp = F.relu(self.bns[i](self.convs[i](sp)))
            out = sp if i == 0 else torch.cat((out, sp), 1)
        last = self.pool(spx[self.nums]) if self.stype == "stage" else spx[self.nums]
        out = self.bn3(self.conv3(torch.cat((out, last), 1)))
        residual = self.downsample(x) if self.downsample is not None else x
        return F.relu(out + residual)


class RefRes2Net(nn.Module):
    def __init__(self, layers=(3, 4, 23), in_chans=8):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_chans, 32, 3, 2, 1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(inplace=True),
            nn.Conv2d(32, 32, 3, 1, 1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(inplace=True),
            nn.Conv2d(32, 64, 3, 1, 1, bias=False),
        )
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)

    def _make_layer(self, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * 4:
            downsample = nn.Sequential(
                nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False),
                nn.Conv2d(self.inplanes, planes * 4, 1, bias=False),
                nn.BatchNorm2d(planes * 4),
            )
        mods = [RefBottle2neck(self.inplanes, planes, stride, downsample, stype="stage")]
        self.inplanes = planes * 4
        mods += [RefBottle2neck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*mods)

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        l1 = self.layer1(x)
        l2 = self.layer2(l1)
        return l1, l2, self.layer3(l2)


class RefCA(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.ca = nn.Sequential(nn.Conv2d(c, c // 8, 1), nn.ReLU(), nn.Conv2d(c // 8, c, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.ca(x.mean(dim=(2, 3), keepdim=True))


class RefPA(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.pa = nn.Sequential(nn.Conv2d(c, c // 8, 1), nn.ReLU(), nn.Conv2d(c // 8, 1, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.pa(x)


class RefDehazeBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        self.calayer, self.palayer = RefCA(c), RefPA(c)

    def forward(self, x):
        res = F.relu(self.conv1(x)) + x
        res = self.palayer(self.calayer(self.conv2(res)))
        return res + x


class RefEnhancer(nn.Module):
    def __init__(self, cin=28, mid=20):
        super().__init__()
        self.refine1 = nn.Conv2d(cin, mid, 3, padding=1)
        self.refine2 = nn.Conv2d(mid, mid, 3, padding=1)
        self.conv1010 = nn.Conv2d(mid, 1, 1)
        self.conv1020 = nn.Conv2d(mid, 1, 1)
        self.conv1030 = nn.Conv2d(mid, 1, 1)
        self.conv1040 = nn.Conv2d(mid, 1, 1)
        self.refine3 = nn.Conv2d(mid + 4, cin, 3, padding=1)
        self.batch1 = nn.InstanceNorm2d(100, affine=True)

    def forward(self, x):
        lrelu = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
        d = lrelu(self.refine2(lrelu(self.refine1(x))))
        size = d.shape[2:]
        x1 = F.interpolate(lrelu(self.conv1010(F.avg_pool2d(d, 32))), size=size, mode="nearest")
        x2 = F.interpolate(lrelu(self.conv1020(F.avg_pool2d(d, 16))), size=size, mode="nearest")
        x3 = F.interpolate(lrelu(self.conv1030(F.avg_pool2d(d, 8))), size=size, mode="nearest")
        x4 = F.interpolate(lrelu(self.conv1040(F.avg_pool2d(d, 4))), size=size, mode="nearest")
        return torch.tanh(self.refine3(torch.cat((x1, x2, x3, x4, d), 1)))


class RefDehaze3(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = RefRes2Net()
        self.mid_conv = RefDehazeBlock(1024)
        self.up_block1 = nn.PixelShuffle(2)
        self.attention1 = RefDehazeBlock(256)
        self.attention2 = RefDehazeBlock(192)
        self.enhancer = RefEnhancer(28, 20)
        self.tail = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(28, 3, 7), nn.Tanh())

    def forward(self, x):
        l1, l2, l3 = self.encoder(x)
        x = self.attention1(self.up_block1(self.mid_conv(l3)))
        x = self.attention2(self.up_block1(torch.cat((x, l2), 1)))
        x = self.up_block1(self.up_block1(torch.cat((x, l1), 1)))
        return self.tail(self.enhancer(x))
