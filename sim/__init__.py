"""MuJoCo multi-view tabletop simulation: WidowX 250 and Piper arms, four SIMPLER-style tasks.

Quick use::

    import sim
    env = sim.make_env(robot="widowx", task="carrot_on_plate", cameras=("third_person", "wrist"))
    obs, info = env.reset(seed=0)
    expert = sim.make_expert(env)
    obs, reward, terminated, truncated, info = env.step(expert.act(obs))

Every robot x task is also registered with gymnasium, e.g.
``gymnasium.make("lam_ros/WidowX-CarrotOnPlate-v0", cameras=("wrist",))``
(:data:`ENV_IDS`). Importing this package is cheap: MuJoCo loads on first use.
"""

from __future__ import annotations

import gymnasium

ROBOTS: tuple[str, ...] = ("widowx", "piper")
TASKS: tuple[str, ...] = ("carrot_on_plate", "stack_cube", "spoon_on_towel", "eggplant_in_basket")
CAMERAS: tuple[str, ...] = ("third_person", "side", "wrist")

_ROBOT_IDS = {"widowx": "WidowX", "piper": "Piper"}
_TASK_IDS = {
    "carrot_on_plate": "CarrotOnPlate",
    "stack_cube": "StackCube",
    "spoon_on_towel": "SpoonOnTowel",
    "eggplant_in_basket": "EggplantInBasket",
}
# (robot, task) -> gymnasium id
ENV_IDS: dict[tuple[str, str], str] = {
    (robot, task): f"lam_ros/{_ROBOT_IDS[robot]}-{_TASK_IDS[task]}-v0" for robot in ROBOTS for task in TASKS
}


def _register() -> None:
    for (robot, task), env_id in ENV_IDS.items():
        if env_id not in gymnasium.registry:
            # No max_episode_steps here: the env truncates itself at the task's length.
            gymnasium.register(id=env_id, entry_point="sim.env:SimEnv", kwargs={"robot": robot, "task": task})


_register()


def _check_name(value, known: tuple[str, ...], what: str) -> str:
    if value not in known:
        raise ValueError(f"unknown {what} {value!r}; known {what}s: {', '.join(known)}")
    return value


def make_env(robot: str = "widowx", task: str = "carrot_on_plate", cameras=CAMERAS, image_size=(128, 128),
             randomize_cameras: bool = False, camera_ranges=None, seed: int | None = None, noise=None, **kwargs):
    """A :class:`sim.env.SimEnv` (a ``gymnasium.Env``). ``image_size`` is (width, height) or ``"WxH"``.

    ``noise``: exogenous noise, a :class:`sim.noise.ExogenousNoise`, a mapping of its knobs or
    ``"camera_motion=0.5,distractors=2"`` (default: none)."""
    _check_name(robot, ROBOTS, "robot")
    _check_name(task, TASKS, "task")
    from sim.env import SimEnv

    return SimEnv(robot=robot, task=task, cameras=cameras, image_size=image_size,
                  randomize_cameras=randomize_cameras, camera_ranges=camera_ranges, seed=seed, noise=noise, **kwargs)


def make_expert(env):
    """The scripted expert of ``env``'s task (privileged object poses); ``expert.act(obs) -> (7,) action``."""
    from sim.experts import make_expert as _make_expert

    return _make_expert(env)
