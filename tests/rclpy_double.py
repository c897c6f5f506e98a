"""A small, documented test double of the rclpy API the lam_ros nodes use.

ROS 2 cannot be installed here (FACTS section 1), so the node shells in
``lam_ros/nodes`` are tested against this stand-in. ``install(monkeypatch)``
puts it into ``sys.modules`` (only for the duration of one test) under:

* ``rclpy``: ``init``, ``shutdown``, ``try_shutdown``, ``ok``, ``spin``,
  ``spin_once``;
* ``rclpy.node``: ``Node`` with ``declare_parameter`` / ``get_parameter`` /
  ``add_on_set_parameters_callback`` / ``set_parameters``,
  ``create_publisher`` / ``create_subscription`` (with QoS), ``create_timer``,
  ``create_service``, ``get_clock``, ``get_logger``, ``get_name``,
  ``destroy_node``; ``parameter_overrides=[Parameter(...)]`` as in rclpy;
* ``rclpy.qos``: ``QoSProfile``, ``ReliabilityPolicy``, ``HistoryPolicy``,
  ``DurabilityPolicy``, ``qos_profile_sensor_data``;
* ``rclpy.parameter``: ``Parameter``; ``rclpy.time``: ``Time``;
  ``rclpy.duration``: ``Duration``;
* message modules ``std_msgs.msg``, ``sensor_msgs.msg``, ``geometry_msgs.msg``,
  ``builtin_interfaces.msg``, ``diagnostic_msgs.msg``, ``rcl_interfaces.msg``:
  classes generated from the rosbags typestore (same fields as rclpy's) with
  rclpy's default construction and *rclpy's type checks on assignment* (e.g.
  a NumPy array assigned to a ``float32[]`` field or an ``np.float32`` to a
  ``float64`` field raises, as it does with real rclpy);
* ``std_srvs.srv`` (``Trigger``, ``SetBool``) and, unless ``vendor=False``,
  the vendor packages ``piper_msgs.msg.PosCmd`` and
  ``interbotix_xs_msgs.msg.JointGroupCommand`` / ``JointSingleCommand`` as
  simple stand-ins with the drivers' field names.

Delivery: ``publish`` hands the message synchronously to every subscription
with the same resolved topic name, in every live node, *if the QoS is
compatible* (a RELIABLE subscription never gets messages from a BEST_EFFORT
publisher, like DDS). ``ros.deliver(topic, msg)`` injects a message as if from
an outside publisher. Time is a manual clock: ``ros.clock.set(seconds)``;
timers fire only when a test calls ``timer.fire()`` or ``ros.fire_timers()``.
"""

from __future__ import annotations

import array
import enum
import math
import sys
import types
from collections.abc import Sequence, Set
from dataclasses import dataclass, field

from rosbags.typesys import Stores, get_typestore
from rosbags.typesys.store import Nodetype

_TS = get_typestore(Stores.ROS2_HUMBLE)

# ---------------------------------------------------------------- messages ---

_TYPECODES = {
    "int8": "b", "uint8": "B", "int16": "h", "uint16": "H", "int32": "i", "uint32": "I",
    "int64": "q", "uint64": "Q", "float32": "f", "float64": "d", "byte": "B", "char": "B",
}
_INT_RANGES = {
    "int8": (-(2**7), 2**7 - 1), "uint8": (0, 2**8 - 1), "int16": (-(2**15), 2**15 - 1), "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1), "uint32": (0, 2**32 - 1), "int64": (-(2**63), 2**63 - 1), "uint64": (0, 2**64 - 1),
    "byte": (0, 255), "char": (0, 255),
}


def _check_scalar(cls_name, fname, base, value):
    """rclpy's generated setters assert the Python type; mimic that."""
    if base in ("float32", "float64"):
        ok = isinstance(value, float)  # np.float64 is a float subclass; np.float32 is not
        if ok and base == "float32" and math.isfinite(value) and abs(value) > 3.402823466e38:
            ok = False
    elif base == "byte":  # rclpy: a bytes object of length 1, e.g. DiagnosticStatus.OK == b"\x00"
        ok = isinstance(value, bytes) and len(value) == 1
    elif base in _INT_RANGES:
        lo, hi = _INT_RANGES[base]
        ok = isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi
    elif base == "bool":
        ok = isinstance(value, bool)
    elif base in ("string", "wstring"):
        ok = isinstance(value, str)
    else:
        ok = True
    if not ok:
        raise AssertionError(f"The '{fname}' field of {cls_name} must be of type {base}, got {type(value).__name__} {value!r}")


def _default_for(spec):
    kind, detail = spec
    if kind == Nodetype.BASE:
        base = detail[0]
        if base in ("float32", "float64"):
            return 0.0
        if base == "bool":
            return False
        if base == "byte":
            return b"\x00"
        if base in ("string", "wstring"):
            return ""
        return 0
    if kind == Nodetype.NAME:
        return message_class(detail)()
    if kind == Nodetype.ARRAY:  # fixed size
        inner, size = detail
        if inner[0] == Nodetype.BASE and inner[1][0] in _TYPECODES:
            import numpy as np  # rclpy uses numpy arrays for fixed-size numeric arrays

            return np.zeros(size, dtype={"f": np.float32, "d": np.float64}.get(_TYPECODES[inner[1][0]], np.int64))
        return [_default_for(inner) for _ in range(size)]
    if kind == Nodetype.SEQUENCE:
        inner, _ = detail
        if inner[0] == Nodetype.BASE and inner[1][0] in _TYPECODES:
            return array.array(_TYPECODES[inner[1][0]])
        return []
    raise TypeError(f"unsupported field spec {spec}")


class _Message:
    """Base of generated message classes: keyword construction + checked setters."""

    _fields: dict = {}
    __msgtype__ = ""

    def __init__(self, **kwargs):
        for name, spec in self._fields.items():
            object.__setattr__(self, name, _default_for(spec))
        for k, v in kwargs.items():
            if k not in self._fields:
                raise AssertionError(f"Invalid arguments passed to constructor: {k}")
            setattr(self, k, v)

    def __setattr__(self, name, value):
        spec = self._fields.get(name)
        if spec is None:
            raise AttributeError(f"{type(self).__name__} has no field {name!r}")
        kind, detail = spec
        cls_name = type(self).__name__
        if kind == Nodetype.BASE:
            _check_scalar(cls_name, name, detail[0], value)
        elif kind == Nodetype.NAME:
            if type(value).__msgtype__ != detail:
                raise AssertionError(f"The '{name}' field of {cls_name} must be a sub message of type {detail}")
        elif kind in (Nodetype.SEQUENCE, Nodetype.ARRAY):
            inner = detail[0]
            if inner[0] == Nodetype.BASE and inner[1][0] in _TYPECODES and kind == Nodetype.SEQUENCE:
                code = _TYPECODES[inner[1][0]]
                if isinstance(value, array.array):
                    if value.typecode != code:
                        raise AssertionError(f"The '{name}' array.array() must have the type code of '{code}'")
                else:
                    if not ((isinstance(value, (Sequence, Set))) and not isinstance(value, str)):
                        raise AssertionError(
                            f"The '{name}' field of {cls_name} must be a set or sequence (got {type(value).__name__})"
                        )
                    for v in value:
                        _check_scalar(cls_name, name, inner[1][0], v)
                    value = array.array(code, value)
            elif inner[0] == Nodetype.BASE:
                if not isinstance(value, (Sequence, Set)) or isinstance(value, str):
                    if kind == Nodetype.SEQUENCE or not hasattr(value, "shape"):
                        raise AssertionError(f"The '{name}' field of {cls_name} must be a sequence")
                else:
                    for v in value:
                        _check_scalar(cls_name, name, inner[1][0], v)
                    value = list(value)
            else:
                value = list(value)
                for v in value:
                    if type(v).__msgtype__ != inner[1]:
                        raise AssertionError(f"The '{name}' field of {cls_name} must hold {inner[1]} messages")
        object.__setattr__(self, name, value)

    def __eq__(self, other):
        if type(other) is not type(self):
            return False
        return all(_eq(getattr(self, f), getattr(other, f)) for f in self._fields)

    def __repr__(self):
        inner = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{self.__msgtype__.replace('/msg/', '.msg.')}({inner})"


def _eq(a, b):
    if hasattr(a, "shape") or hasattr(b, "shape"):
        return list(a) == list(b)
    return a == b


_CLASSES: dict[str, type] = {}


def message_class(msgtype: str) -> type:
    """The (cached) message class for ``pkg/msg/Name`` built from the rosbags typestore."""
    if msgtype not in _CLASSES:
        if msgtype not in _TS.fielddefs:
            raise ImportError(f"message type {msgtype} is not in the rosbags ROS2_HUMBLE typestore")
        consts, fields = _TS.fielddefs[msgtype]
        name = msgtype.rsplit("/", 1)[-1]
        attrs = {"_fields": dict(fields), "__msgtype__": msgtype, "__slots__": ()}
        for cname, ctype, cvalue in consts:  # e.g. DiagnosticStatus.WARN == b"\x01" in rclpy
            attrs[cname] = bytes([cvalue]) if ctype == "byte" else cvalue
        _CLASSES[msgtype] = type(name, (_Message,), attrs)
    return _CLASSES[msgtype]


def _plain_message(msgtype: str, fields: dict) -> type:
    """A stand-in message class for packages not in the typestore (vendor messages, services)."""
    specs = {}
    for fname, base in fields.items():
        if base.endswith("[]"):
            specs[fname] = (Nodetype.SEQUENCE, ((Nodetype.BASE, (base[:-2], 0)), 0))
        else:
            specs[fname] = (Nodetype.BASE, (base, 0))
    return type(msgtype.rsplit("/", 1)[-1], (_Message,), {"_fields": specs, "__msgtype__": msgtype, "__slots__": ()})


VENDOR_MESSAGES = {
    # piper_ros: piper_msgs/msg/PosCmd.msg
    "piper_msgs/msg/PosCmd": {
        "x": "float64", "y": "float64", "z": "float64", "roll": "float64", "pitch": "float64", "yaw": "float64",
        "gripper": "float64", "mode1": "int32", "mode2": "int32",
    },
    # interbotix_ros_core: interbotix_xs_msgs/msg/JointGroupCommand.msg and JointSingleCommand.msg
    "interbotix_xs_msgs/msg/JointGroupCommand": {"name": "string", "cmd": "float32[]"},
    "interbotix_xs_msgs/msg/JointSingleCommand": {"name": "string", "cmd": "float32"},
}


def _service(srvtype: str, request: dict, response: dict):
    srv = type(srvtype.rsplit("/", 1)[-1], (), {})
    srv.Request = _plain_message(srvtype + "_Request", request)
    srv.Response = _plain_message(srvtype + "_Response", response)
    return srv


def _msg_module(package: str) -> types.ModuleType:
    """``<package>.msg`` whose attributes are generated on first access (PEP 562)."""
    mod = types.ModuleType(f"{package}.msg")

    def __getattr__(name):
        msgtype = f"{package}/msg/{name}"
        if msgtype in VENDOR_MESSAGES:
            cls = _CLASSES.setdefault(msgtype, _plain_message(msgtype, VENDOR_MESSAGES[msgtype]))
        else:
            try:
                cls = message_class(msgtype)
            except ImportError as exc:
                raise AttributeError(str(exc)) from None
        setattr(mod, name, cls)
        return cls

    mod.__getattr__ = __getattr__
    return mod


# --------------------------------------------------------------------- QoS ---

class ReliabilityPolicy(enum.IntEnum):
    SYSTEM_DEFAULT = 0
    RELIABLE = 1
    BEST_EFFORT = 2


class HistoryPolicy(enum.IntEnum):
    SYSTEM_DEFAULT = 0
    KEEP_LAST = 1
    KEEP_ALL = 2


class DurabilityPolicy(enum.IntEnum):
    SYSTEM_DEFAULT = 0
    TRANSIENT_LOCAL = 1
    VOLATILE = 2


@dataclass
class QoSProfile:
    depth: int = 10
    reliability: ReliabilityPolicy = ReliabilityPolicy.RELIABLE
    history: HistoryPolicy = HistoryPolicy.KEEP_LAST
    durability: DurabilityPolicy = DurabilityPolicy.VOLATILE


qos_profile_sensor_data = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)


def _as_qos(qos) -> QoSProfile:
    if isinstance(qos, int):  # rclpy accepts a bare depth
        return QoSProfile(depth=qos)
    if not isinstance(qos, QoSProfile):
        raise TypeError(f"qos must be a QoSProfile or an int depth, got {qos!r}")
    return qos


def qos_compatible(pub: QoSProfile, sub: QoSProfile) -> bool:
    """DDS request/offer: a RELIABLE reader does not match a BEST_EFFORT writer."""
    return not (sub.reliability == ReliabilityPolicy.RELIABLE and pub.reliability == ReliabilityPolicy.BEST_EFFORT)


# -------------------------------------------------------- time, parameters ---

class Duration:
    def __init__(self, *, seconds: float = 0.0, nanoseconds: int = 0):
        self.nanoseconds = int(round(seconds * 1e9)) + int(nanoseconds)


class Time:
    def __init__(self, *, seconds: float = 0.0, nanoseconds: int = 0, clock_type=None):
        self.nanoseconds = int(round(seconds * 1e9)) + int(nanoseconds)

    def seconds_nanoseconds(self):
        return divmod(self.nanoseconds, 10**9)

    def to_msg(self):
        sec, nsec = self.seconds_nanoseconds()
        return message_class("builtin_interfaces/msg/Time")(sec=int(sec), nanosec=int(nsec))

    @classmethod
    def from_msg(cls, msg, clock_type=None):
        return cls(nanoseconds=int(msg.sec) * 10**9 + int(msg.nanosec))

    def __sub__(self, other):
        return Duration(nanoseconds=self.nanoseconds - other.nanoseconds)


class ManualClock:
    """The one clock all double nodes share; tests move it with :meth:`set`/:meth:`advance`."""

    def __init__(self, start_s: float = 1000.0):
        self.t_ns = int(start_s * 1e9)

    def set(self, seconds: float):
        self.t_ns = int(round(seconds * 1e9))

    def advance(self, seconds: float):
        self.t_ns += int(round(seconds * 1e9))

    def now(self) -> Time:
        return Time(nanoseconds=self.t_ns)


class Parameter:
    class Type(enum.IntEnum):
        NOT_SET = 0
        BOOL = 1
        INTEGER = 2
        DOUBLE = 3
        STRING = 4
        BYTE_ARRAY = 5
        BOOL_ARRAY = 6
        INTEGER_ARRAY = 7
        DOUBLE_ARRAY = 8
        STRING_ARRAY = 9

    def __init__(self, name: str, type_=None, value=None):
        self.name = name
        self.value = value
        self.type_ = type_


@dataclass
class SetParametersResult:
    successful: bool = True
    reason: str = ""


# ------------------------------------------------------------------- graph ---

@dataclass
class Publisher:
    node: Node
    msg_type: type
    topic: str
    qos: QoSProfile
    msgs: list = field(default_factory=list)

    def publish(self, msg):
        if not isinstance(msg, self.msg_type):
            raise TypeError(f"publisher on {self.topic} expects {self.msg_type.__name__}, got {type(msg).__name__}")
        self.msgs.append(msg)
        self.node._ros.route(self, msg)

    def get_subscription_count(self):
        return len(self.node._ros.matching_subscriptions(self))


@dataclass
class Subscription:
    node: Node
    msg_type: type
    topic: str
    callback: object
    qos: QoSProfile
    received: int = 0


@dataclass
class Timer:
    period_s: float
    callback: object
    cancelled: bool = False

    def fire(self):
        if not self.cancelled:
            self.callback()

    def cancel(self):
        self.cancelled = True


@dataclass
class Service:
    srv_type: type
    name: str
    callback: object

    def call(self, request=None):
        request = request if request is not None else self.srv_type.Request()
        return self.callback(request, self.srv_type.Response())


class Logger:
    """Collects records; rclpy's logger takes one preformatted string."""

    def __init__(self, name, sink):
        self.name = name
        self.sink = sink

    def _log(self, level, msg, **kwargs):
        if not isinstance(msg, str):
            raise TypeError("rclpy loggers take a single str message")
        self.sink.append((level, self.name, msg))

    def debug(self, msg, **kw):
        self._log("DEBUG", msg, **kw)

    def info(self, msg, **kw):
        self._log("INFO", msg, **kw)

    def warning(self, msg, **kw):
        self._log("WARN", msg, **kw)

    warn = warning

    def error(self, msg, **kw):
        self._log("ERROR", msg, **kw)

    def fatal(self, msg, **kw):
        self._log("FATAL", msg, **kw)


class RosDouble:
    """Process-wide state of the double: the live nodes, the clock, the logs."""

    def __init__(self):
        self.nodes: list[Node] = []
        self.clock = ManualClock()
        self.logs: list[tuple[str, str, str]] = []
        self.initialized = False
        self.spin_hook = None  # called by rclpy.spin(node); default: return at once

    def resolve(self, node, topic: str) -> str:
        if topic.startswith("~/"):
            topic = f"{node.get_name()}/{topic[2:]}"
        if not topic.startswith("/"):
            ns = node.get_namespace().rstrip("/")
            topic = f"{ns}/{topic}"
        return topic

    def matching_subscriptions(self, pub):
        return [
            s for n in self.nodes for s in n.subscriptions.values()
            if s.topic == pub.topic and qos_compatible(pub.qos, s.qos)
        ]

    def route(self, pub, msg):
        for sub in self.matching_subscriptions(pub):
            sub.received += 1
            sub.callback(msg)

    def deliver(self, topic: str, msg, qos: QoSProfile | None = None) -> int:
        """Publish ``msg`` on ``topic`` from outside; returns how many callbacks ran."""
        fake = Publisher(node=None, msg_type=type(msg), topic=topic, qos=qos or QoSProfile())
        subs = self.matching_subscriptions(fake)
        for sub in subs:
            sub.received += 1
            sub.callback(msg)
        return len(subs)

    def fire_timers(self):
        for n in list(self.nodes):
            for t in list(n.timers):
                t.fire()

    def log_text(self, level: str | None = None) -> str:
        return "\n".join(m for lvl, _, m in self.logs if level is None or lvl == level)


class Node:
    def __init__(self, node_name: str, *, namespace: str = "/", parameter_overrides=None, **_kwargs):
        self._ros: RosDouble = _STATE
        self._name = node_name
        self._namespace = namespace if namespace.startswith("/") else "/" + namespace
        self._overrides = {p.name: p.value for p in (parameter_overrides or [])}
        self._parameters: dict[str, Parameter] = {}
        self._param_callbacks = []
        self.publishers: dict[str, Publisher] = {}
        self.subscriptions: dict[str, Subscription] = {}
        self.timers: list[Timer] = []
        self.services: dict[str, Service] = {}
        self._logger = Logger(node_name, self._ros.logs)
        self.destroyed = False
        self._ros.nodes.append(self)

    # names
    def get_name(self):
        return self._name

    def get_namespace(self):
        return self._namespace

    # parameters
    def declare_parameter(self, name, value=None, descriptor=None, ignore_override=False):
        if name in self._parameters:
            raise RuntimeError(f"parameter {name!r} declared twice (rclpy raises ParameterAlreadyDeclaredException)")
        v = self._overrides.get(name, value)
        if value is not None and v is not None and type(v) is not type(value) and not (
            isinstance(value, float) and isinstance(v, int)
        ):
            raise TypeError(f"parameter {name!r}: override {v!r} has a different type than the default {value!r}")
        p = Parameter(name, value=v)
        p.descriptor = descriptor
        self._parameters[name] = p
        return p

    def get_parameter(self, name):
        if name not in self._parameters:
            raise RuntimeError(f"parameter {name!r} not declared (rclpy raises ParameterNotDeclaredException)")
        return self._parameters[name]

    def has_parameter(self, name):
        return name in self._parameters

    def add_on_set_parameters_callback(self, callback):
        self._param_callbacks.append(callback)
        return callback

    def set_parameters(self, params):
        results = []
        for p in params:
            result = SetParametersResult(True)
            declared = self._parameters.get(p.name)
            if declared is not None and getattr(declared.descriptor, "read_only", False):  # as rclpy refuses it
                results.append(SetParametersResult(False, reason=f"Trying to set a read-only parameter: {p.name}"))
                continue
            for cb in self._param_callbacks:
                result = cb([p])
                if not result.successful:
                    break
            if result.successful:
                self._parameters[p.name] = Parameter(p.name, value=p.value)
            results.append(result)
        return results

    # pub/sub/timers/services
    def create_publisher(self, msg_type, topic, qos_profile, **_kw):
        pub = Publisher(self, msg_type, self._ros.resolve(self, topic), _as_qos(qos_profile))
        if pub.topic in self.publishers:
            raise AssertionError(f"{self._name}: two publishers on {pub.topic}")
        self.publishers[pub.topic] = pub
        return pub

    def create_subscription(self, msg_type, topic, callback, qos_profile, **_kw):
        sub = Subscription(self, msg_type, self._ros.resolve(self, topic), callback, _as_qos(qos_profile))
        if sub.topic in self.subscriptions:
            raise AssertionError(f"{self._name}: two subscriptions on {sub.topic}")
        self.subscriptions[sub.topic] = sub
        return sub

    def create_timer(self, timer_period_sec, callback, **_kw):
        if not timer_period_sec > 0:
            raise ValueError("timer period must be > 0")
        t = Timer(float(timer_period_sec), callback)
        self.timers.append(t)
        return t

    def create_service(self, srv_type, srv_name, callback, **_kw):
        s = Service(srv_type, self._ros.resolve(self, srv_name), callback)
        self.services[s.name] = s
        return s

    def get_clock(self):
        return self._ros.clock

    def get_logger(self):
        return self._logger

    def destroy_node(self):
        self.destroyed = True
        if self in self._ros.nodes:
            self._ros.nodes.remove(self)


_STATE = RosDouble()


# ------------------------------------------------------------ installation ---

def _module(name: str, **attrs) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    mod.__file__ = __file__  # so tracebacks point here
    return mod


def install(monkeypatch, vendor: bool = True) -> RosDouble:
    """Install the double into ``sys.modules`` for one test; returns its state.

    Also forgets already-imported ``lam_ros.nodes.*`` modules so they import
    the double, and restores everything when the test ends (monkeypatch).
    """
    global _STATE
    _STATE = RosDouble()

    def init(args=None, context=None):
        _STATE.initialized = True

    def shutdown(context=None):
        if not _STATE.initialized:
            raise RuntimeError("rclpy.shutdown() called twice or before init")
        _STATE.initialized = False

    def try_shutdown(context=None):
        _STATE.initialized = False

    def ok(context=None):
        return _STATE.initialized

    def spin(node, executor=None):
        if _STATE.spin_hook is not None:
            _STATE.spin_hook(node)

    def spin_once(node, executor=None, timeout_sec=None):
        _STATE.fire_timers()

    rclpy = _module("rclpy", init=init, shutdown=shutdown, try_shutdown=try_shutdown, ok=ok, spin=spin,
                    spin_once=spin_once, __path__=[])
    mods = {
        "rclpy": rclpy,
        "rclpy.node": _module("rclpy.node", Node=Node),
        "rclpy.qos": _module(
            "rclpy.qos", QoSProfile=QoSProfile, ReliabilityPolicy=ReliabilityPolicy, HistoryPolicy=HistoryPolicy,
            DurabilityPolicy=DurabilityPolicy, qos_profile_sensor_data=qos_profile_sensor_data,
        ),
        "rclpy.parameter": _module("rclpy.parameter", Parameter=Parameter),
        "rclpy.time": _module("rclpy.time", Time=Time),
        "rclpy.duration": _module("rclpy.duration", Duration=Duration),
        # event callbacks are accepted and never fire (the double has no QoS events: tests of the
        # incompatible-QoS warning run on the real graph, tests/test_ros_graph.py).
        "rclpy.event_handler": _module("rclpy.event_handler",
                                       SubscriptionEventCallbacks=lambda **kw: types.SimpleNamespace(**kw)),
        "rclpy.executors": _module("rclpy.executors", ExternalShutdownException=type(
            "ExternalShutdownException", (Exception,), {})),
        "rcl_interfaces": _module("rcl_interfaces", __path__=[]),
        "rcl_interfaces.msg": _module(
            "rcl_interfaces.msg", SetParametersResult=SetParametersResult,
            ParameterDescriptor=lambda **kw: types.SimpleNamespace(**kw),
        ),
        "std_srvs": _module("std_srvs", __path__=[]),
        "std_srvs.srv": _module(
            "std_srvs.srv",
            Trigger=_service("std_srvs/srv/Trigger", {}, {"success": "bool", "message": "string"}),
            SetBool=_service("std_srvs/srv/SetBool", {"data": "bool"}, {"success": "bool", "message": "string"}),
        ),
    }
    for attr in ("node", "qos", "parameter", "time", "duration", "event_handler", "executors"):
        setattr(rclpy, attr, mods[f"rclpy.{attr}"])
    packages = ["std_msgs", "sensor_msgs", "geometry_msgs", "builtin_interfaces", "diagnostic_msgs"]
    if vendor:
        packages += ["piper_msgs", "interbotix_xs_msgs"]
    for pkg in packages:
        mods[pkg] = _module(pkg, __path__=[])
        mods[f"{pkg}.msg"] = _msg_module(pkg)
        mods[pkg].msg = mods[f"{pkg}.msg"]
    if not vendor:
        for pkg in ("piper_msgs", "interbotix_xs_msgs"):
            # A None entry makes `import pkg` raise ImportError, as on a machine without it.
            monkeypatch.setitem(sys.modules, pkg, None)
            monkeypatch.setitem(sys.modules, pkg + ".msg", None)
    for name, mod in mods.items():
        monkeypatch.setitem(sys.modules, name, mod)
    for name in list(sys.modules):
        if name.startswith("lam_ros.nodes."):
            monkeypatch.delitem(sys.modules, name)
    return _STATE
