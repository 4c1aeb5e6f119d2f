"""Synthetic CS2 gameplay frames with exact truth: a state sampler and a HUD renderer.

Layout follows the real CS2 HUD (see ../shared/data/screenshots): radar top-left with the place name under
it; round timer, score and 5+5 portraits top-centre (dead ones greyed, money under them while buying);
kill feed top-right; money bottom-left; armor and health bottom centre-left with icons; ammo and the active
weapon's name bottom-right above the inventory column; the bomb in the inventory when carried; a red bomb
icon and C4 timer in place of the round timer when planted.

Everything is drawn on a 1920x1080 canvas (scaled by the HUD scale) and resized to the output size, so any
16:9 size works. Deterministic: the same (state, extras, style) gives the same bytes.

A label says only what its frame shows. `sample_state` returns a GameState whose every non-null field is
drawn: the map is not on the HUD (it lives in Extras, for the radar's place names), so map_name is null; the
site is drawn (a letter in the planted-bomb icon) only after a plant, so it is null otherwise; each bomb status
has its own element (C4 in the inventory or on the radar, a "bomb dropped" alert, the planted icon, the
round-end banner; "not_visible" is the absence of all of them). `label_elements` names, per labelled field,
the HUD elements that carry it; tests read them back from the pixels.
"""

from __future__ import annotations

import io
import math
import random
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from chimera.schema import WEAPONS, GameState, weapon_kind

W, H = 1920, 1080
MAPS = {  # real place names (from the parsed matches' placeDict) so the map can be told from the radar
    "de_mirage": ["TSpawn", "CTSpawn", "Palace", "Ramp", "Connector", "Jungle", "Apartments", "Underpass", "Market", "BombsiteA", "BombsiteB"],
    "de_inferno": ["TSpawn", "CTSpawn", "Banana", "Apartments", "Balcony", "Library", "Arch", "Pit", "Graveyard", "BombsiteA", "BombsiteB"],
    "de_dust2": ["TSpawn", "CTSpawn", "LongDoors", "Catwalk", "Tunnels", "UpperTunnel", "Middle", "ShortStairs", "BombsiteA", "BombsiteB"],
    "de_nuke": ["TSpawn", "CTSpawn", "Outside", "Ramp", "Hut", "Lobby", "Secret", "Vents", "Heaven", "BombsiteA", "BombsiteB"],
    "de_ancient": ["TSpawn", "CTSpawn", "Donut", "Cave", "Temple", "Ruins", "Middle", "Elbow", "BombsiteA", "BombsiteB"],
    "de_overpass": ["TSpawn", "CTSpawn", "Fountain", "Monster", "Connector", "Bathrooms", "Canal", "Playground", "BombsiteA", "BombsiteB"],
    "de_train": ["TSpawn", "CTSpawn", "Ivy", "Popdog", "Connector", "Ladder", "OldBomb", "NewBomb", "BombsiteA", "BombsiteB"],
}
NAMES = ["ZywOo", "ropz", "apEX", "flameZ", "mezii", "FalleN", "yuurih", "KSCERATO", "molodoy", "YEKINDAR",
         "donk", "sh1ro", "zont1x", "magixx", "chopper", "NiKo", "m0NESY", "kyxsan", "TeSeS", "Magisk"]
COLOR_CT, COLOR_T = (93, 151, 227), (222, 171, 65)
UTILITY_LIMITS = {"Flashbang": 2, "Smoke Grenade": 1, "HE Grenade": 1, "Molotov": 1, "Incendiary Grenade": 1,
                  "Decoy Grenade": 1}
PLANTED_ICON, BOMB_ICON = (220, 40, 40), (250, 120, 20)
AMMO = {"pistol": (12, 24), "smg": (30, 120), "rifle": (30, 90), "sniper": (5, 30), "heavy": (8, 32)}


@dataclass
class Extras:
    """What the frame shows beyond the schema's game_state (needed to draw it consistently)."""
    round_num: int = 1
    ct_score: int = 0
    t_score: int = 0
    time_left_s: float = 115.0
    bomb_time_left_s: float | None = None
    ammo_clip: int = 30
    ammo_reserve: int = 90
    active_slot: str = "primary"               # primary | secondary | knife
    has_kit: bool = False
    has_bomb: bool = False                     # the player carries it (T only)
    place: str = "TSpawn"
    teammate_money: list[int] = field(default_factory=list)
    kill_feed: list[tuple[str, str, str]] = field(default_factory=list)  # (killer, weapon, victim)
    player_name: str = "you"
    map_name: str = "de_mirage"               # not drawn (the HUD does not show it): never in the label


@dataclass
class Style:
    width: int = 1920
    height: int = 1080
    hud_scale: float = 1.0
    font: str = "DejaVuSans-Bold.ttf"
    font_scale: float = 1.0
    jpeg_quality: int | None = None            # None: no JPEG round trip
    blur: float = 0.0
    background: str = "procedural"            # procedural | crop:<file name in shared screenshots>
    seed: int = 0

    def clean(self) -> "Style":
        """The same frame with no compression or blur: for exact read-back of drawn values."""
        return replace(self, jpeg_quality=None, blur=0.0)


RESOLUTIONS = [(1920, 1080), (1280, 720), (640, 360)]
FONTS = ["DejaVuSans-Bold.ttf", "DejaVuSans.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono.ttf"]


def sample_style(rng: random.Random, backgrounds: list[str] | None = None) -> Style:
    width, height = rng.choices(RESOLUTIONS, weights=[0.4, 0.3, 0.3])[0]
    background = "procedural"
    if backgrounds and rng.random() < 0.5:
        background = "crop:" + rng.choice(backgrounds)
    hud_scale, font = round(rng.uniform(0.85, 1.15), 3), rng.choice(FONTS)
    rng.uniform(0.9, 1.1)  # was a text size jitter on top of the HUD scale, which CS2 does not have (BENCHMARKS.md):
    # still drawn, so every other factor of a seed's style stays what it was
    return Style(width=width, height=height, hud_scale=hud_scale, font=font, font_scale=1.0,
                 jpeg_quality=rng.choice([None, 95, 85, 70, 55]), blur=rng.choice([0.0, 0.0, 0.4, 0.8]),
                 background=background, seed=rng.randrange(1 << 30))


# --------------------------------------------------------------------------------------------------
# State sampler
# --------------------------------------------------------------------------------------------------

def _buyable(side: str, kinds: set[str]) -> list[str]:
    return [name for name, (kind, who, _, _) in WEAPONS.items() if kind in kinds and who in (side, "both")]


def sample_state(rng: random.Random) -> tuple[GameState, Extras]:
    """A plausible, self-consistent game state from the player's point of view (the player is alive)."""
    side = rng.choice(["CT", "T"])
    map_name = rng.choice(sorted(MAPS))
    round_num = rng.randint(1, 24)
    own_score = rng.randint(max(0, round_num - 13), min(12, round_num - 1))
    enemy_score = round_num - 1 - own_score
    phase = rng.choices(["buy", "playing", "post_plant", "round_end"], weights=[0.2, 0.55, 0.2, 0.05])[0]
    pistol = round_num in (1, 13)

    money = 800 if pistol and phase == "buy" else rng.randrange(0, 16001, 50)
    eco = phase != "buy" and not pistol and rng.random() < 0.25
    if phase == "buy" or pistol or eco:
        primary = None if (phase == "buy" or pistol or rng.random() < 0.7) else rng.choice(_buyable(side, {"smg", "heavy"}))
    else:
        primary = rng.choice(_buyable(side, {"rifle", "sniper", "smg"}) + (["AK-47"] if side == "T" else ["M4A1-S", "M4A4"]) * 3)
    secondary = rng.choice(_buyable(side, {"pistol"})) if rng.random() < 0.3 else ("Glock-18" if side == "T" else rng.choice(["USP-S", "P2000"]))
    utility: list[str] = []
    if not (phase == "buy" and rng.random() < 0.5):
        pool = ["Flashbang", "Flashbang", "Smoke Grenade", "HE Grenade", "Decoy Grenade",
                "Molotov" if side == "T" else "Incendiary Grenade"]
        for g in rng.sample(pool, rng.randint(0, 4)):
            if utility.count(g) < UTILITY_LIMITS[g] and len(utility) < 4:
                utility.append(g)
    utility.sort()

    alive_teammates = 4 if phase == "buy" else rng.randint(0, 4)
    alive_enemies = 5 if phase == "buy" else rng.randint(1, 5)
    health = 100 if phase == "buy" else rng.choice([100, 100, rng.randint(1, 100)])
    armor = 0 if (pistol and phase == "buy") else rng.choice([0, 100, 100, rng.randint(1, 100)])

    site: str | None = None
    bomb_time = None
    has_bomb = False
    if phase == "post_plant":
        bomb, site = "planted", rng.choice(["A", "B"])
        bomb_time = round(rng.uniform(1, 40), 1)
    elif phase == "round_end":
        bomb = rng.choice(["defused", "exploded"])
        site = rng.choice(["A", "B"])
        alive_enemies = rng.randint(0, 5) if bomb == "exploded" else alive_enemies
    elif side == "T":
        bomb = rng.choices(["carried", "dropped"], weights=[0.85, 0.15])[0]
        has_bomb = bomb == "carried" and rng.random() < 0.3
    else:
        bomb = "not_visible"
    visible = 0 if phase == "buy" else min(alive_enemies, rng.choices([0, 1, 2, 3], weights=[0.5, 0.3, 0.15, 0.05])[0])
    active = "primary" if primary else "secondary"
    if rng.random() < 0.1:
        active = "knife"
    kind = weapon_kind(primary if active == "primary" else secondary) or "pistol"
    clip_max, reserve_max = AMMO.get(kind, (12, 24))
    names = rng.sample(NAMES, 10)
    feed = [(rng.choice(names), rng.choice(["AK-47", "M4A1-S", "AWP", "Desert Eagle", "USP-S"]), rng.choice(names))
            for _ in range(0 if phase == "buy" else rng.randint(0, 3))]
    time_left = 115.0 if phase == "buy" else round(rng.uniform(0, 115), 0)
    if phase != "post_plant":
        site = None  # only a planted bomb's icon shows the site
    state = GameState(
        map_name=None, round_phase=phase, player_side=side, player_health=health, player_armor=armor,
        player_money=money, team_money_total=None, weapon_primary=primary, weapon_secondary=secondary,
        utility=utility, alive_teammates=alive_teammates, alive_enemies=alive_enemies, bomb_status=bomb,
        site=site, visible_enemies=visible)
    teammate_money = []
    if phase == "buy":
        teammate_money = [rng.randrange(0, 16001, 50) for _ in range(4)]
        state = state.model_copy(update={"team_money_total": money + sum(teammate_money)})
    extras = Extras(round_num=round_num, ct_score=own_score if side == "CT" else enemy_score,
                    t_score=own_score if side == "T" else enemy_score, time_left_s=time_left,
                    bomb_time_left_s=bomb_time, ammo_clip=rng.randint(0, clip_max), ammo_reserve=rng.randint(0, reserve_max),
                    active_slot=active, has_kit=side == "CT" and rng.random() < 0.5 and not pistol, has_bomb=has_bomb,
                    place=rng.choice(MAPS[map_name]), teammate_money=teammate_money, kill_feed=feed,
                    player_name=names[0], map_name=map_name)
    return state, extras


# --------------------------------------------------------------------------------------------------
# Renderer
# --------------------------------------------------------------------------------------------------

@lru_cache(maxsize=64)
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name
    return ImageFont.truetype(str(path), max(6, size))


@lru_cache(maxsize=8)
def _crop_source(path: str) -> Image.Image:
    return Image.open(path).convert("RGB")


def _background(style: Style, rng: random.Random, screenshots_dir: Path | None) -> Image.Image:
    if style.background.startswith("crop:") and screenshots_dir is not None:
        src = _crop_source(str(screenshots_dir / style.background[5:]))
        sw, sh = src.size
        # the centre band only: the real HUD lives at the edges
        cw, ch = int(sw * 0.45), int(sh * 0.45)
        x0 = rng.randint(int(sw * 0.2), int(sw * 0.8) - cw)
        y0 = rng.randint(int(sh * 0.18), int(sh * 0.72) - ch)
        return src.crop((x0, y0, x0 + cw, y0 + ch)).resize((W, H), Image.BILINEAR)
    # procedural: sky/wall gradient, textured blocks (walls, crates), a floor
    img = Image.new("RGB", (W, H))
    d = ImageDraw.Draw(img)
    top = tuple(rng.randint(90, 200) for _ in range(3))
    bottom = tuple(rng.randint(40, 140) for _ in range(3))
    for y in range(0, H, 4):
        t = y / H
        d.rectangle([0, y, W, y + 4], fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom)))
    for _ in range(rng.randint(5, 12)):
        x0, y0 = rng.randint(-200, W), rng.randint(100, H - 200)
        w, h = rng.randint(150, 700), rng.randint(100, 600)
        base = tuple(rng.randint(50, 210) for _ in range(3))
        d.rectangle([x0, y0, x0 + w, y0 + h], fill=base)
        for k in range(rng.randint(2, 8)):  # planks / bricks
            yy = y0 + k * h // 8
            d.line([x0, yy, x0 + w, yy], fill=tuple(max(0, c - 25) for c in base), width=3)
    # seeded noise: PIL's effect_noise draws from an unseeded C generator and breaks determinism
    grain = np.random.default_rng(rng.randrange(1 << 30)).normal(128, rng.uniform(10, 30), (H // 4, W // 4))
    noise = Image.fromarray(np.clip(grain, 0, 255).astype(np.uint8), "L").resize((W, H)).convert("RGB")
    return Image.blend(img, noise, 0.12)


def _enemy(d: ImageDraw.ImageDraw, x: int, y: int, scale: float, color) -> None:
    """A crude standing player silhouette: head, torso, legs."""
    s = scale
    d.ellipse([x - 14 * s, y, x + 14 * s, y + 28 * s], fill=color)
    d.rectangle([x - 22 * s, y + 28 * s, x + 22 * s, y + 100 * s], fill=color)
    d.rectangle([x - 20 * s, y + 100 * s, x - 4 * s, y + 170 * s], fill=color)
    d.rectangle([x + 4 * s, y + 100 * s, x + 20 * s, y + 170 * s], fill=color)


def _viewmodel(d: ImageDraw.ImageDraw, rng: random.Random, kind: str | None) -> None:
    """First-person weapon and arm silhouette, bottom right, shaped by weapon kind."""
    dark = tuple(rng.randint(20, 60) for _ in range(3))
    length = {"sniper": 700, "rifle": 560, "smg": 420, "heavy": 480}.get(kind or "", 260)
    x1, y1 = 1400, 1080
    x0, y0 = x1 - length, 1080 - int(length * 0.55)
    d.polygon([(x0, y0), (x0 + 40, y0 - 25), (x1, y1 - 160), (x1 + 60, y1), (x1 - 90, y1)], fill=dark)
    d.polygon([(x1 - 120, y1), (x1 - 40, y1 - 220), (x1 + 160, y1 - 140), (x1 + 220, y1)],
              fill=tuple(min(255, c + 30) for c in dark))


ARMOR_X, HEALTH_X = 560, 740   # canvas x of the shield and of the health cross at HUD scale 1


def vitals_icons(s: float) -> tuple[list[tuple[float, float]], list[list[float]]]:
    """The armor shield (a polygon outline) and the health cross (two bars) at HUD scale s, in canvas pixels: fixed
    shapes whatever the state, so `estimate_hud_scale` finds the scale by where they are."""
    ax, hx = ARMOR_X * s, HEALTH_X * s
    shield = [(ax, H - 72 * s), (ax + 30 * s, H - 72 * s), (ax + 30 * s, H - 45 * s), (ax + 15 * s, H - 32 * s),
              (ax, H - 45 * s)]
    bars = [[hx + 10 * s, H - 72 * s, hx + 20 * s, H - 36 * s], [hx - 3 * s, H - 59 * s, hx + 33 * s, H - 49 * s]]
    return shield, bars


LOOKS = ("classic", "cs2")
CS2_MONEY = {"CT": (150, 190, 240), "T": (235, 190, 85)}  # CS2 draws the money and vitals in the team's colour
CS2_CONDENSED = 0.8   # CS2's digits are narrower than DejaVu's: drawn, then squeezed to this share of their width
# CS2's money, measured on the shared screenshots' money crops cut at HUD scale 1 (a 10-pixel ruler over each,
# BENCHMARKS.md): bold, as wide as it is tall (not squeezed), and right-aligned: six of the nine amounts end on
# the same pixel whatever their number of digits, so a short amount starts further right
CS2_MONEY_SIZE = 32       # the digits about 23 px tall on a 1080-line frame
CS2_MONEY_RIGHT = 130     # x of the amount's right end at HUD scale 1 (1920-wide canvas)
CS2_MONEY_BASELINE = 33   # the baseline's height above the bottom edge at HUD scale 1


def _bold(font: str) -> str:
    """The bold face of one of FONTS: CS2 draws its money bold whatever the classic style's weight."""
    return font if "Bold" in font else font.replace(".ttf", "-Bold.ttf")


def render_frame(state: GameState, extras: Extras, style: Style, screenshots_dir: Path | None = None,
                 look: str = "classic") -> tuple[Image.Image, dict[str, tuple[int, int, int, int]]]:
    """Draw the frame. Returns the image (style.width x style.height) and the HUD element boxes, scaled to it.

    `look` draws the money and vitals as this renderer always has ("classic": white digits in a black outline, a
    cross by the health) or closer to CS2's own HUD ("cs2": digits in the team's colour with a thin shadow, the
    money bold and right-aligned, the armor small inside its shield, the health condensed over a bar). The icons
    stay where `vitals_icons` puts them in both, so `estimate_hud_scale` finds the scale of either. It is an
    argument, not a Style field, so the frames and manifests drawn before it existed stay byte for byte what they
    were."""
    if look not in LOOKS:
        raise ValueError(f"unknown HUD look {look!r}: expected one of {', '.join(LOOKS)}")
    rng = random.Random(style.seed)
    img = _background(style, rng, screenshots_dir)
    d = ImageDraw.Draw(img, "RGBA")
    side = state.player_side or "CT"
    own_color, enemy_color = (COLOR_CT, COLOR_T) if side == "CT" else (COLOR_T, COLOR_CT)
    s = style.hud_scale
    boxes: dict[str, tuple[int, int, int, int]] = {}

    def font(size: float, name: str | None = None):
        return _font(name or style.font, int(size * s * style.font_scale))

    def text(key: str | None, xy, value: str, size: float, fill=(255, 255, 255), anchor="la", name=None):
        f = font(size, name)
        d.text(xy, value, font=f, fill=fill, anchor=anchor, stroke_width=max(1, int(2 * s)), stroke_fill=(0, 0, 0))
        box = d.textbbox(xy, value, font=f, anchor=anchor, stroke_width=max(1, int(2 * s)))
        if key:
            boxes[key] = tuple(int(v) for v in box)
        return box

    # scene: enemies in view and the view model
    for i in range(state.visible_enemies or 0):
        x, y, scale = rng.randint(500 + 300 * i, 700 + 300 * i), rng.randint(380, 560), rng.uniform(0.5, 1.1)
        _enemy(d, x, y, scale, enemy_silhouette(enemy_color) + (255,))
        boxes[f"enemy_{i}"] = (int(x - 22 * scale), int(y), int(x + 22 * scale), int(y + 170 * scale))
    active_weapon = {"primary": state.weapon_primary, "secondary": state.weapon_secondary}.get(extras.active_slot) or "Knife"
    _viewmodel(d, rng, weapon_kind(active_weapon))

    # radar, top-left, with the place name under it
    r = int(130 * s)
    cx, cy = int(20 * s) + r, int(20 * s) + r
    d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(20, 25, 30, 200), outline=(200, 200, 200, 160), width=2)
    for _ in range(8):
        bx, by = cx + rng.randint(-r // 2, r // 2), cy + rng.randint(-r // 2, r // 2)
        d.rectangle([bx, by, bx + rng.randint(10, 50) * s, by + rng.randint(10, 50) * s], fill=(90, 100, 110, 200))
    for i in range(state.alive_teammates or 0):
        px, py = cx + rng.randint(-r // 2, r // 2), cy + rng.randint(-r // 2, r // 2)
        d.ellipse([px - 6, py - 6, px + 6, py + 6], fill=own_color)
    if state.bomb_status == "carried" and not extras.has_bomb:  # the T radar shows the bomb on its carrier
        bx, by = cx + r // 3, cy - r // 3
        d.rectangle([bx - 12 * s, by - 8 * s, bx + 12 * s, by + 8 * s], fill=BOMB_ICON, outline=(0, 0, 0))
        boxes["bomb_radar"] = (int(bx - 12 * s), int(by - 8 * s), int(bx + 12 * s), int(by + 8 * s))
    d.polygon([(cx, cy - 10), (cx - 7, cy + 8), (cx + 7, cy + 8)], fill=(255, 255, 255))
    text("place", (cx, cy + r + 8 * s), extras.place, 22, anchor="ma")

    # top centre: score, timer (or planted bomb + C4 timer), portraits
    mid = W // 2
    panel = [mid - 70 * s, 6 * s, mid + 70 * s, 90 * s]
    d.rectangle(panel, fill=(0, 0, 0, 140))
    if state.bomb_status == "planted":
        d.ellipse([mid - 18 * s, 12 * s, mid + 18 * s, 48 * s], fill=PLANTED_ICON)
        boxes["bomb_planted"] = (int(mid - 18 * s), int(12 * s), int(mid + 18 * s), int(48 * s))
        if state.site in ("A", "B"):  # the planted site's letter in the icon, as the radar marks it
            text("site", (mid, 30 * s), state.site, 22, anchor="mm")
        if extras.bomb_time_left_s is not None:
            text("c4_timer", (mid, 50 * s), f"{extras.bomb_time_left_s:.0f}", 16, fill=(255, 90, 90), anchor="ma")
    else:
        t = max(0, int(extras.time_left_s))
        text("timer", (mid, 12 * s), f"{t // 60}:{t % 60:02d}", 30, anchor="ma")
    ct_left = side == "CT"
    left_score, right_score = (extras.ct_score, extras.t_score) if ct_left else (extras.t_score, extras.ct_score)
    text("score_own", (mid - 32 * s, 52 * s), str(left_score), 26, anchor="ma")
    text("score_enemy", (mid + 32 * s, 52 * s), str(right_score), 26, anchor="ma")
    own_alive = (state.alive_teammates or 0) + 1
    for team, alive, color, direction in ((0, own_alive, own_color, -1), (1, state.alive_enemies or 0, enemy_color, 1)):
        for i in range(5):
            x = mid + direction * (90 + i * 62) * s
            box = [x - 27 * s, 8 * s, x + 27 * s, 62 * s]
            boxes[f"portrait_{'own' if team == 0 else 'enemy'}_{i}"] = tuple(int(v) for v in box)
            living = i < alive
            d.rectangle(box, fill=(color if living else (70, 70, 70)) + (230 if living else 160,),
                        outline=(255, 255, 255, 120))
            d.ellipse([x - 12 * s, 14 * s, x + 12 * s, 38 * s], fill=(30, 30, 30) if living else (110, 110, 110))
            if team == 0 and i > 0 and extras.teammate_money and state.round_phase in ("buy", "freezetime"):
                text(f"teammate_money_{i}", (x, 66 * s), f"${extras.teammate_money[i - 1]}", 14, anchor="ma")

    # alerts and banners under the top panel: what the phase and the bomb are when no timer tells
    if state.round_phase in ("buy", "freezetime"):
        text("buy_hint", (mid, 150 * s), "BUY PHASE  press B", 24, fill=(140, 230, 140), anchor="ma")
    if state.bomb_status == "dropped":
        text("bomb_dropped", (mid, 190 * s), "The bomb has been dropped", 22, fill=(255, 200, 80), anchor="ma")
    if state.round_phase == "round_end":
        winner = ("Counter-Terrorists" if state.bomb_status == "defused" else "Terrorists") + " win"
        reason = {"defused": "Bomb defused", "exploded": "Target bombed"}.get(state.bomb_status or "", "")
        text("round_end_banner", (mid, 230 * s), f"{winner}  {reason}".strip(), 34, anchor="ma")

    # kill feed, top right
    for i, (killer, weapon, victim) in enumerate(extras.kill_feed):
        y = (20 + 36 * i) * s
        line = f"{killer}  [{weapon}]  {victim}"
        box = d.textbbox((W - 20 * s, y), line, font=font(18), anchor="ra")
        d.rectangle([box[0] - 8, box[1] - 5, box[2] + 8, box[3] + 5], fill=(0, 0, 0, 150),
                    outline=(220, 40, 40, 200) if killer == extras.player_name else None)
        text(None, (W - 20 * s, y), line, 18, anchor="ra")

    # bottom left: money; bottom centre-left: armor and health with icons
    money = f"${state.player_money}" if state.player_money is not None else ""
    low = (state.player_health or 0) <= 20
    shield, cross_bars = vitals_icons(s)
    if look == "cs2":
        _cs2_money_and_vitals(img, d, state, money, low, s, style, boxes, shield, cross_bars)
    else:
        _classic_money_and_vitals(d, state, money, low, s, text, shield, cross_bars)

    # bottom right: ammo and weapon name above the inventory column
    if extras.active_slot != "knife":
        text("ammo", (W - 360 * s, H - 78 * s), f"{extras.ammo_clip}", 40)
        text("ammo_reserve", (W - 300 * s, H - 68 * s), f"/ {extras.ammo_reserve}", 26, fill=(200, 200, 200))
    inventory = [("weapon_primary", state.weapon_primary), ("weapon_secondary", state.weapon_secondary), ("knife", "Knife")]
    inventory += [(f"utility_{i}", g) for i, g in enumerate(state.utility or [])]
    if extras.has_bomb:
        inventory.append(("bomb", "C4"))
    if extras.has_kit:
        inventory.append(("kit", "Defuse Kit"))
    y = H - 120 * s - 34 * s * len(inventory)
    for key, name in inventory:
        if not name:
            continue
        active = name == active_weapon
        text(key, (W - 24 * s, y), name, 22 if active else 19, fill=(255, 255, 255) if active else (185, 185, 185), anchor="ra")
        y += 34 * s

    frame = img
    if (style.width, style.height) != (W, H):
        frame = img.resize((style.width, style.height), Image.LANCZOS)
    if style.blur:
        frame = frame.filter(ImageFilter.GaussianBlur(style.blur))
    if style.jpeg_quality:
        buf = io.BytesIO()
        frame.save(buf, "JPEG", quality=style.jpeg_quality)
        frame = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    fx, fy = style.width / W, style.height / H
    scaled = {k: (int(b[0] * fx), int(b[1] * fy), math.ceil(b[2] * fx), math.ceil(b[3] * fy)) for k, b in boxes.items()}
    return frame, scaled


def _classic_money_and_vitals(d, state: GameState, money: str, low: bool, s: float, text, shield, cross_bars) -> None:
    text("money", (30 * s, H - 70 * s), money, 40,
         fill=(140, 230, 140) if state.round_phase in ("buy", "freezetime") else (255, 255, 255))
    d.polygon(shield, outline=(230, 230, 230), width=3)
    text("armor", (ARMOR_X * s + 45 * s, H - 75 * s), str(state.player_armor), 36)
    cross = (235, 60, 60) if low else (230, 230, 230)
    for bar in cross_bars:
        d.rectangle(bar, fill=cross)
    text("health", (HEALTH_X * s + 45 * s, H - 75 * s), str(state.player_health), 36,
         fill=(235, 60, 60) if low else (255, 255, 255))


def _condensed(img: Image.Image, xy: tuple[float, float], value: str, font: ImageFont.FreeTypeFont, fill,
               anchor: str = "ls", squeeze: float = CS2_CONDENSED) -> tuple[int, int, int, int]:
    """Draw `value` squeezed to `squeeze` of its width, with a one-pixel dark shadow instead of the classic
    outline, anchored at `xy` ("ls": left, baseline; "ms": middle; "rs": right). Returns its box on the canvas."""
    if not value:
        return (int(xy[0]), int(xy[1]), int(xy[0]), int(xy[1]))
    left, top, right, bottom = font.getbbox(value, anchor="ls")
    pad = 2
    layer = Image.new("RGBA", (right - left + 2 * pad + 1, bottom - top + 2 * pad + 1), (0, 0, 0, 0))
    ld = ImageDraw.Draw(layer)
    origin = (pad - left, pad - top)
    ld.text((origin[0] + 1, origin[1] + 1), value, font=font, fill=(0, 0, 0, 170), anchor="ls")
    ld.text(origin, value, font=font, fill=tuple(fill) + (255,), anchor="ls")
    width = max(1, round(layer.width * squeeze))
    layer = layer.resize((width, layer.height), Image.LANCZOS)
    x = xy[0] - {"l": 0, "m": width / 2, "r": width}[anchor[0]]
    x0, y0 = int(round(x)), int(round(xy[1] - origin[1]))
    img.paste(layer, (x0, y0), layer)
    return (x0, y0, x0 + layer.width, y0 + layer.height)


def _cs2_money_and_vitals(img, d, state: GameState, money: str, low: bool, s: float, style: Style, boxes: dict,
                          shield, cross_bars) -> None:
    """The money and vitals as CS2 draws them (the shared real screenshots): see render_frame's `look`."""
    color = CS2_MONEY[state.player_side or "CT"]
    boxes["money"] = _condensed(img, (CS2_MONEY_RIGHT * s, H - CS2_MONEY_BASELINE * s), money,
                                _font(_bold(style.font), int(CS2_MONEY_SIZE * s)), color, anchor="rs", squeeze=1.0)
    d.polygon(shield, outline=color, width=2)
    # the armor's digits inside the shield, small (the shield is 30 x 40 at scale 1; "100" at 18 fills its width)
    boxes["armor"] = _condensed(img, (ARMOR_X * s + 15 * s, H - 49 * s), str(state.player_armor),  # one font: a
                                _font(FONTS[0], int(18 * s)), (225, 225, 225), anchor="ms")  # mono 0 this small is a 6
    for bar in cross_bars:
        d.rectangle(bar, fill=(225, 225, 225, 110))
    box = _condensed(img, (HEALTH_X * s + 45 * s, H - 40 * s), str(state.player_health),
                     _font(style.font, int(40 * s)), (240, 60, 60) if low else (235, 235, 235))
    bar_y = box[3] + 2 * s
    d.rectangle([box[0], bar_y, box[2], bar_y + 4 * s], fill=(235, 60, 60) if low else color)
    boxes["health"] = (box[0], box[1], box[2], int(bar_y + 4 * s))


def enemy_silhouette(enemy_color: tuple[int, int, int]) -> tuple[int, int, int]:
    return tuple(max(0, c - 90) for c in enemy_color)


def label_elements(state: GameState, extras: Extras) -> dict[str, list[str]]:
    """For every non-null field of the label, the HUD elements (keys of render_frame's boxes) that show it.
    An empty list means the value is shown by absence (no enemy in view, no bomb on a CT's HUD, no grenades)."""
    phase_element = {"buy": ["buy_hint"], "freezetime": ["buy_hint"], "playing": ["timer"],
                     "post_plant": ["bomb_planted"], "round_end": ["round_end_banner"]}
    bomb_element = {"carried": ["bomb"] if extras.has_bomb else ["bomb_radar"], "dropped": ["bomb_dropped"],
                    "planted": ["bomb_planted"], "defused": ["round_end_banner"], "exploded": ["round_end_banner"],
                    "not_visible": []}
    own = [f"portrait_own_{i}" for i in range(5)]
    enemy = [f"portrait_enemy_{i}" for i in range(5)]
    elements = {
        "round_phase": phase_element.get(state.round_phase or "", []),
        "player_side": own,
        "player_health": ["health"], "player_armor": ["armor"], "player_money": ["money"],
        "team_money_total": ["money"] + [f"teammate_money_{i}" for i in range(1, 5)],
        "weapon_primary": ["weapon_primary"], "weapon_secondary": ["weapon_secondary"],
        "utility": [f"utility_{i}" for i in range(len(state.utility or []))] or ["knife"],
        "alive_teammates": own, "alive_enemies": enemy,
        "bomb_status": bomb_element.get(state.bomb_status or "", []),
        "site": ["site"],
        "visible_enemies": [f"enemy_{i}" for i in range(state.visible_enemies or 0)],
    }
    return {name: keys for name, keys in elements.items() if getattr(state, name) is not None}


def png_bytes(image: Image.Image) -> bytes:
    """Lossless and deterministic, at zlib level 1: at the default level encoding was the larger part of rendering
    and saving a 1080p frame; level 1 is several times faster for somewhat larger files."""
    buf = io.BytesIO()
    image.save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def extras_dict(extras: Extras) -> dict:
    return asdict(extras)


HUD_SCALE_RANGE = (0.80, 1.20)   # the search range: the sampler draws 0.85-1.15
HUD_SCALE_STEP = 0.005


def _icon_masks(band: tuple[int, int], top: float, fx: float, fy: float, s: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per icon, the flat indices of its pixels and of a ring around them, in a band of (width, height) whose first
    row is frame row `top`, with the icons drawn where HUD scale s puts them."""
    shield, bars = vitals_icons(s)
    out = []
    for draw in (lambda d: d.polygon([(x * fx, y * fy - top) for x, y in shield], outline=255, width=max(1, round(3 * fx))),
                 lambda d: [d.rectangle([x0 * fx, y0 * fy - top, x1 * fx, y1 * fy - top], fill=255) for x0, y0, x1, y1 in bars]):
        shape = Image.new("L", band)
        draw(ImageDraw.Draw(shape))
        on = np.asarray(shape) > 127
        ring = (np.asarray(shape.filter(ImageFilter.MaxFilter(2 * max(1, round(2 * fx)) + 1))) > 127) & ~on
        out.append((np.flatnonzero(on), np.flatnonzero(ring)))
    return out


@lru_cache(maxsize=8)
def _search_grid(w: int, h: int, lo: float, hi: float):
    """Where to look in a w x h frame, and each candidate scale's icon masks: built once per frame size."""
    top, right = max(0, int((H - 80 * hi) * h / H) - 2), min(w, int((HEALTH_X + 40) * hi * w / W) + 2)
    k = min(1.0, 640 / w)  # search at most at 640 pixels wide: as exact as at 1080p (bench/bench_hud_locator.py)
    band = (max(1, round(right * k)), max(1, round((h - top) * k)))
    fx, fy = w * k / W, h * k / H
    scales = np.round(np.arange(lo, hi + 1e-9, HUD_SCALE_STEP), 3)
    return (0, top, right, h), band, [(float(s), _icon_masks(band, top * k, fx, fy, float(s))) for s in scales]


def estimate_hud_scale(frame: Image.Image, scale_range: tuple[float, float] = HUD_SCALE_RANGE) -> tuple[float, float]:
    """The HUD scale of a frame, found from where the armor shield and health cross are (`vitals_icons`).

    The HUD scales about the frame's corners, so the icons' positions alone tell the scale: for each candidate
    (steps of 0.005) the icons are drawn where that scale puts them, and the candidate whose pixels differ most
    in colour from a ring around them wins (per icon and channel |mean inside - mean in the ring|, summed: either
    polarity, as the low-health cross is red and may sit on an orange background). No translation search.
    Returns (scale, contrast): the contrast (0-1530) says how sure it is; a frame without this HUD scores low.
    """
    box, band, grid = _search_grid(*frame.size, *scale_range)
    pixels = np.asarray(frame.convert("RGB").crop(box).resize(band, Image.BILINEAR), dtype=np.float32).reshape(-1, 3)
    best = (-np.inf, 1.0)
    for s, masks in grid:
        if all(len(on) and len(ring) for on, ring in masks):
            contrast = sum(float(np.abs(pixels[on].mean(axis=0) - pixels[ring].mean(axis=0)).sum()) for on, ring in masks)
            best = max(best, (contrast, s))
    return best[1], best[0]
