"""Store records for tests, completed from the transition's one definition (TRANSITION).

A test names the fields it is about; every other field of the store that TRANSITION gives a
default (policy_version, intervention, stamp_ns, instruction, camera frames, and whatever
field comes next) gets that default, in the store's own shape. So a new field of the schema
needs no edit of the tests that write stores.
"""
from __future__ import annotations

from typing import Any, Mapping

from realrl_common.transition import TRANSITION, TransitionField, TransitionSchema


def field_of(store_name: str, fields: TransitionSchema = TRANSITION) -> TransitionField | None:
    """The transition field a store field holds (None: robot_id, seq, embodiment, ...)."""
    for f in fields.fields:
        if f.camera_of(store_name) is not None if f.per_camera else f.store_name() == store_name:
            return f
    return None


def store_record(writer, values: Mapping[str, Any], fields: TransitionSchema = TRANSITION
                 ) -> dict:
    """``values`` (store field names: 'obs/state', 'reward', ...; and robot_id, seq) plus
    the default of every field of ``writer``'s store they leave out. Fields without a
    default (state, action, reward, ...) must be given: the writer names any missing.
    ``fields``: the schema the store was made from (an extended one, in schema tests)."""
    record = dict(values)
    for spec in writer.schema.fields:
        f = field_of(spec.name, fields)
        if spec.name not in record and f is not None and f.default is not None:
            record[spec.name] = f.fill(spec.shape)[()]
    return record
