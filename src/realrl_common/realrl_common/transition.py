"""The fields of a transition, defined once (numpy only: no rclpy, no message import).

``TRANSITION`` lists every field a transition carries from a driver to the replay store:
its name (in the driver's transition and in ``Transition.msg``), dtype, shape (names stand
for the robot's dimensions), whether it is one value per camera, the message field that
carries it and the store field that holds it. Everything else is derived from it:

- the message conversion on both sides: ``to_message`` (driver) and ``from_message``
  (replay node);
- the store's fields (``store_fields``; the replay node adds the embodiment, the store adds
  ``robot_id`` and ``seq``), store records and columns (``store_columns``);
- demonstration import, LeRobot export (``lerobot``) and the synthetic test data.

Adding a field is one ``TransitionField`` here plus its line in ``Transition.msg``; with a
``default`` it flows through before any producer fills it (``test_transition_schema.py``
shows this with an extended schema).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np

from realrl_common.convert import fill_image, from_f32, image_array, to_f32

ROBOT_ID = 'robot_id'
"""The sender's name: carried by every message, kept by the store as a code per row."""
SEQ = 'seq'
"""The sender's sequence number (gap-free per robot)."""
EMBODIMENT = 'embodiment'
"""Store-only field: the row's embodiment index in the store's shared space."""
EMBODIMENT_DTYPE = np.dtype(np.int16)
EPISODE_ID = 'episode_id'

STATE_DIM, ACTION_DIM, HEIGHT, WIDTH = 'state_dim', 'action_dim', 'height', 'width'
"""Names that a shape may use for the robot's dimensions."""
STAMP = 'header.stamp'
"""Message 'field' of the time stamp (int64 nanoseconds in the store)."""
INSTRUCTION_BYTES = 256
"""Width of the stored language instruction: its UTF-8 bytes, zero-padded (the driver's
config refuses a longer one)."""
IMAGES_FROM_PREVIOUS = 'images_from_previous'
"""Message flag (and key of ``from_message``'s values): the transition's camera frames of the
field whose ``previous`` names another were not sent; they are that field's frames of the
same robot's previous transition (seq - 1, same episode, step - 1). Each frame crosses DDS
once: a driver's obs images at step s are its next images of step s - 1."""


@dataclass(frozen=True)
class Dims:
    """The dimensions a schema's shapes are resolved with (one robot's, or a store's)."""

    state_dim: int
    action_dim: int
    cameras: tuple[str, ...] = ()
    image_size: tuple[int, int] = (0, 0)

    @classmethod
    def of(cls, desc: Mapping) -> Dims:
        """From a robot description (``realrl_common.embodiment.describe_robot``)."""
        return cls(int(desc['state_dim']), int(desc['action_dim']),
                   tuple(desc.get('cameras') or ()), tuple(desc.get('image_size') or (0, 0)))

    def resolve(self, shape: tuple) -> tuple[int, ...]:
        sizes = {STATE_DIM: self.state_dim, ACTION_DIM: self.action_dim,
                 HEIGHT: self.image_size[0], WIDTH: self.image_size[1]}
        return tuple(sizes[n] if isinstance(n, str) else int(n) for n in shape)


@dataclass(frozen=True)
class TransitionField:
    """One field of a transition."""

    name: str
    """Name in the driver's transition and in ``Transition.msg``."""
    dtype: str
    """numpy dtype of the stored value."""
    shape: tuple = ()
    """Shape of one value (of one camera's frame); str entries name a dimension of ``Dims``."""
    store: str = ''
    """Store field name ('' = ``name``); with ``per_camera``, a pattern with ``{cam}``."""
    per_camera: bool = False
    """One value per camera: a dict camera -> frame; one store field per camera."""
    msg: str = ''
    """Message field that carries it ('' = ``name``; ``STAMP``: the header's stamp)."""
    default: Any = None
    """Fill value where a sender gives none (None: required). Cameras: black frames."""
    lerobot: str = ''
    """LeRobot feature name in exports ('' = not exported); ``{cam}`` for cameras."""
    finite: bool = False
    """Values must be finite (a NaN reward is refused)."""
    text: bool = False
    """A string in the driver's transition and the message (a ``string`` field), stored as
    its UTF-8 bytes zero-padded to ``shape[0]`` (dtype uint8): the store holds numbers
    only, and a fixed-width column needs no table beside the store (``encode_text``)."""
    previous: str = ''
    """Per-camera field whose frames of the sender's previous transition are this field's
    frames when the message sets ``IMAGES_FROM_PREVIOUS`` ('' = always sent)."""

    @property
    def store_pattern(self) -> str:
        return self.store or self.name

    @property
    def msg_field(self) -> str:
        return self.msg or self.name

    def store_name(self, cam: str = '') -> str:
        return self.store_pattern.format(cam=cam) if self.per_camera else self.store_pattern

    def camera_of(self, store_name: str) -> str | None:
        """The camera of a store field of this (per-camera) field, or None."""
        head, _, tail = self.store_pattern.partition('{cam}')
        if (self.per_camera and store_name.startswith(head) and store_name.endswith(tail)
                and len(store_name) > len(head) + len(tail)):
            return store_name[len(head):len(store_name) - len(tail)]
        return None

    def fill(self, shape: tuple[int, ...]) -> np.ndarray:
        """The default value, in ``shape``."""
        if self.default is None:
            raise ValueError(f'field {self.name!r} is required and missing')
        return np.full(shape, self.default, np.dtype(self.dtype))


class TransitionSchema:
    """An ordered tuple of ``TransitionField`` and the views derived from it."""

    def __init__(self, fields: Iterable[TransitionField]):
        self.fields = tuple(fields)
        names = [f.name for f in self.fields]
        stores = [f.store_pattern for f in self.fields]
        for what, values in (('name', names), ('store name', stores)):
            dup = sorted({v for v in values if values.count(v) > 1})
            if dup:
                raise ValueError(f'transition fields repeat the {what} {dup}')
        reserved = {ROBOT_ID, SEQ, EMBODIMENT} & (set(names) | set(stores))
        if reserved:
            raise ValueError(f'{sorted(reserved)} are reserved (envelope or store fields)')
        for f in self.fields:
            if f.text and (f.dtype != 'uint8' or len(f.shape) != 1 or f.per_camera):
                raise ValueError(f"field {f.name!r}: a text field is 'uint8' of shape (bytes,)")
            if f.per_camera and '{cam}' not in f.store_pattern:
                raise ValueError(f"field {f.name!r}: a per-camera store name needs '{{cam}}'")
            try:
                np.dtype(f.dtype)
            except TypeError:
                raise ValueError(f'field {f.name!r}: dtype {f.dtype!r} is not a numpy dtype; '
                                 "use e.g. 'float32', 'int64', 'bool'") from None
        self.by_name = {f.name: f for f in self.fields}
        for f in self.fields:
            other = self.by_name.get(f.previous) if f.previous else f
            if not (f.per_camera and other.per_camera) and f.previous:
                raise ValueError(f'field {f.name!r}: previous={f.previous!r} must name a '
                                 'per-camera field, and the field itself be per camera')
        self._decoders = [(f.name, _decoder(f)) for f in self.fields]

    def extended(self, *fields: TransitionField) -> TransitionSchema:
        """This schema plus ``fields`` (e.g. the next issue's new field, before it lands)."""
        return TransitionSchema(self.fields + fields)

    # -- store -----------------------------------------------------------------------------
    def store_fields(self, dims: Dims) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """Store field name -> (shape, dtype), cameras expanded (``ReplayWriter.create``);
        a field with a zero dimension (demonstrations without a low-dim state) is left out."""
        out = {}
        for f in self.fields:
            shape, dtype = dims.resolve(f.shape), np.dtype(f.dtype)
            if 0 in shape:
                continue
            for name in self._expand(f, dims.cameras):
                out[name] = (shape, dtype)
        return out

    def store_columns(self, values: Mapping[str, Any], n: int, dims: Dims) -> dict:
        """Stacked store columns of ``n`` transitions from values by field name (arrays of
        n rows; camera fields: dicts camera -> n frames); missing fields get their default."""
        out = {}
        for f in self.fields:
            shape = dims.resolve(f.shape)
            if 0 in shape:
                continue
            given = values.get(f.name)
            for cam in (dims.cameras if f.per_camera else ('',)):
                value = given.get(cam) if f.per_camera and given is not None else given
                if value is None:
                    value = f.fill((n, *shape))
                out[f.store_name(cam)] = value
        return out

    def store_cameras(self, store_names: Iterable[str]) -> tuple[str, ...]:
        """Cameras of a store, from its field names, in order of appearance."""
        cams: list[str] = []
        for name in store_names:
            for f in self.fields:
                cam = f.camera_of(name)
                if cam is not None and cam not in cams:
                    cams.append(cam)
        return tuple(cams)

    @staticmethod
    def _expand(f: TransitionField, cameras) -> list[str]:
        return [f.store_name(c) for c in cameras] if f.per_camera else [f.store_name()]

    # -- message ---------------------------------------------------------------------------
    def to_message(self, msg, robot_id: str, seq: int, values: Mapping[str, Any],
                   image_cls=None, from_previous: bool = False):
        """Fill a Transition message from values by field name; returns ``msg``. With
        ``from_previous`` (the sender's previous transition, seq - 1, is step - 1 of the same
        episode), the frames of fields with a ``previous`` are left out and the message says
        so (``IMAGES_FROM_PREVIOUS``): the receiver has them already."""
        if image_cls is None:
            from sensor_msgs.msg import Image as image_cls
        msg.robot_id, msg.seq = robot_id, int(seq)
        if from_previous:
            setattr(msg, IMAGES_FROM_PREVIOUS, True)
        for f in self.fields:
            value = values.get(f.name)
            if f.per_camera:
                frames = []
                if from_previous and f.previous:
                    value = None
                for cam, frame in (value or {}).items():
                    img = image_cls()
                    fill_image(img, frame, cam)
                    frames.append(img)
                setattr(msg, f.msg_field, frames)
                continue
            if value is None:  # left out: an empty array or string, or a scalar's default
                value = ('' if f.text else []) if f.shape else f.fill(())
            if f.msg_field == STAMP:
                ns = int(value)
                msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(ns, 1_000_000_000)
            else:
                setattr(msg, f.msg_field, _to_msg_value(f, value))
        return msg

    def from_message(self, msg) -> dict[str, Any]:
        """Values by field name (plus ``robot_id`` and ``seq``) of a Transition message.
        Arrays come flat; camera fields as dicts camera -> HxWxC frame. ValueError names
        the field of a value that cannot be decoded."""
        out: dict[str, Any] = {ROBOT_ID: str(msg.robot_id), SEQ: int(msg.seq)}
        if getattr(msg, IMAGES_FROM_PREVIOUS, False):
            out[IMAGES_FROM_PREVIOUS] = True
        for name, decode in self._decoders:
            try:
                out[name] = decode(msg)
            except ValueError as e:
                raise ValueError(f'field {name!r}: {e}') from None
        return out


def encode_text(text: str, size: int, what: str = 'text') -> np.ndarray:
    """``text`` as ``size`` uint8: its UTF-8 bytes, zero-padded. ValueError naming ``what``
    if it does not fit (or holds a NUL byte, which would end it early when decoded)."""
    data = str(text).encode('utf-8')
    if len(data) > size or b'\0' in data:
        raise ValueError(f'{what} must be at most {size} UTF-8 bytes without NUL, got '
                         f'{len(data)} bytes: shorten it')
    out = np.zeros(size, np.uint8)
    out[:len(data)] = np.frombuffer(data, np.uint8)
    return out


def decode_text(row) -> str:
    """The string of a stored text field's row (``encode_text``'s inverse)."""
    data = np.asarray(row, np.uint8).tobytes()
    return data.split(b'\0', 1)[0].decode('utf-8', errors='replace')


def _to_msg_value(f: TransitionField, value):
    dtype = np.dtype(f.dtype)
    if f.text:
        return value if isinstance(value, str) else decode_text(value)
    if not f.shape:
        return bool(value) if dtype.kind == 'b' else (
            int(value) if dtype.kind in 'iu' else float(value))
    if dtype == np.float32:
        return to_f32(value)
    return np.asarray(value, dtype).reshape(-1).tolist()


def _decoder(f: TransitionField):
    """Msg -> the field's value, chosen once per field (the node decodes every message)."""
    attr, dtype = f.msg_field, np.dtype(f.dtype)
    if attr == STAMP:
        return lambda msg: int(msg.header.stamp.sec) * 1_000_000_000 + int(
            msg.header.stamp.nanosec)
    if f.per_camera:
        return lambda msg: _frames(getattr(msg, attr))
    if f.text:
        return lambda msg: encode_text(getattr(msg, attr), int(f.shape[0]))
    if not f.shape:
        return lambda msg: dtype.type(getattr(msg, attr))
    # an empty array of a field with a default: the sender left it out (stored as default)
    optional = f.default is not None
    if dtype == np.float32:
        return lambda msg: _given(from_f32(getattr(msg, attr)), optional)
    return lambda msg: _given(np.asarray(getattr(msg, attr), dtype), optional)


def _given(value: np.ndarray, optional: bool):
    return None if optional and value.size == 0 else value


def _frames(images) -> dict[str, np.ndarray]:
    frames = {}
    for img in images:
        cam = img.header.frame_id
        if cam in frames:
            raise ValueError(f'camera {cam!r} twice')
        frames[cam] = image_array(img)
    return frames


TRANSITION = TransitionSchema((
    TransitionField('state', 'float32', (STATE_DIM,), store='obs/state',
                    lerobot='observation.state'),
    TransitionField('next_state', 'float32', (STATE_DIM,), store='next_obs/state'),
    TransitionField('action', 'float32', (ACTION_DIM,), lerobot='action'),
    TransitionField('reward', 'float32', finite=True, lerobot='next.reward'),
    TransitionField('terminated', 'bool'),
    TransitionField('truncated', 'bool'),
    TransitionField(EPISODE_ID, 'int64'),
    TransitionField('step', 'int32'),
    TransitionField('policy_version', 'int64', default=0),
    TransitionField('intervention', 'bool', default=False),
    TransitionField('stamp_ns', 'int64', msg=STAMP, default=0),
    TransitionField('instruction', 'uint8', (INSTRUCTION_BYTES,), text=True, default=0),
    TransitionField('images', 'uint8', (HEIGHT, WIDTH, 3), store='obs/image_{cam}',
                    per_camera=True, default=0, lerobot='observation.images.{cam}',
                    previous='next_images'),
    TransitionField('next_images', 'uint8', (HEIGHT, WIDTH, 3),
                    store='next_obs/image_{cam}', per_camera=True, default=0),
))
"""The transition every driver sends and the replay store keeps."""

