"""Command-line entry points: user errors as one line on stderr, exit status 2.

`run_absl_main(main)` is absl's `app.run(main)` where a VidrlError, and any error in
the flags themselves (an unknown `--config.FIELD`, a value of the wrong type, a
config file that does not exist, an unknown flag), is printed as one `error: ...`
line on stderr with exit status 2 and no traceback. Config-file flags defined with
`define_config_file` get messages naming the field (with close names). An interrupt
(Ctrl-C, or SIGTERM where vidrl_jax.utils.signals turns it into one) is one line too,
exit status 130.
"""
import contextlib
import os
import re
import sys

from vidrl_jax.errors import VidrlError

# Config-file flags defined with define_config_file: {flag name: default path}.
_CONFIG_FLAGS = {}

# What ml_collections' config_flags and absl raise while parsing bad flags.
_FLAG_ERRORS = (AttributeError, KeyError, IndexError, OSError, TypeError, ValueError)


def fail(message):
    """Prints `error: message` (made one line) on stderr and exits with status 2."""
    print(f"error: {one_line(message)}", file=sys.stderr)
    sys.exit(2)


def one_line(message):
    """A multi-line message (e.g. with a wrapped traceback) as one line: its first line
    and, after a traceback, the exception's own last line."""
    lines = [" ".join(l.split()) for l in str(message).splitlines()]
    lines = [l for l in lines if l]
    if not lines:
        return "bad command line"
    if any(l.startswith("Traceback") for l in lines) and len(lines) > 1:
        return f"{lines[0].rstrip(':')}: {lines[-1]}"
    return " ".join(lines)


def define_config_file(name, default, help_string, lock_config=True):
    """ml_collections' DEFINE_config_file; bad `--NAME...` flags become one-line errors.

    (ml_collections parses the default config and its `--NAME.FIELD` overrides at
    definition time when `--NAME` is not on the command line, hence the guard here
    as well as in run_absl_main.)"""
    from ml_collections import config_flags
    _CONFIG_FLAGS[name] = default
    with flag_errors(sys.argv):
        return config_flags.DEFINE_config_file(name, default, help_string,
                                               lock_config=lock_config)


@contextlib.contextmanager
def flag_errors(argv):
    """Turns an error in parsing the flags of `argv` into a one-line exit 2."""
    from absl import flags
    try:
        yield
    except VidrlError as e:  # e.g. an unknown config variant, raised by get_config
        fail(str(e))
    except (flags.Error,) + _FLAG_ERRORS as e:
        fail(explain_flag_error(e, argv))


def _flag_arg(argv, name):
    """The value of `--name=V` / `--name V` in argv (the last one), else None."""
    value = None
    for i, arg in enumerate(argv):
        m = re.match(rf"^--?{re.escape(name)}(=(.*))?$", arg)
        if m:
            value = m.group(2) if m.group(1) else (argv[i + 1] if i + 1 < len(argv) else "")
    return value


def _overrides(argv, name):
    """The FIELD of every `--NAME.FIELD[=V]` / `--noNAME.FIELD` in argv."""
    out = []
    for arg in argv:
        m = re.match(rf"^--?(?:no)?{re.escape(name)}\.([^=]+)", arg)
        if m:
            out.append(m.group(1))
    return out


def _load_config(path):
    """get_config(ARG) of the config file `FILE[:ARG]` (as ml_collections loads it)."""
    import importlib.util
    file, *arg = path.split(":", 1)
    spec = importlib.util.spec_from_file_location("_vidrl_cli_config", file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(*arg)


def _config_problem(argv, name, default):
    """The message for a bad config file or override of config flag `name`, or None."""
    path = _flag_arg(argv, name)
    path = default if path is None else path
    file = path.split(":", 1)[0]
    if not os.path.isfile(file):
        why = "no such file" if not os.path.exists(file) else "not a file"
        return (f"--{name}={path}: {why} {file!r} (config paths are relative to the "
                f"current directory); e.g. --{name}={default}")
    overrides = _overrides(argv, name)
    if not overrides:
        return None
    from vidrl_jax.config_check import close_fields
    try:
        config = _load_config(path)
    except Exception:  # noqa: BLE001 - the caller reports the original error
        return None
    for field in overrides:
        if "[" in field:  # indexing into a tuple: leave it to the original message
            continue
        node, walked = config, []
        for key in field.split("."):
            if not hasattr(node, "to_dict"):
                return (f"--{name}.{field}: {'.'.join(walked)} is a "
                        f"{type(node).__name__}, it has no field {key!r}; see {file}")
            if key not in node:
                close = [f for f in close_fields(config, field)
                         if not field.startswith(f + ".")]  # not its own sections
                hint = f" (did you mean {' or '.join(close)}?)" if close else ""
                return f"--{name}.{field}: no such config field{hint}; see {file}"
            node = node[key]
            walked.append(key)
    return None


def explain_flag_error(error, argv):
    """One line for an error raised while parsing `argv`'s flags."""
    for name, default in _CONFIG_FLAGS.items():
        problem = _config_problem(argv, name, default)
        if problem:
            return problem
    message = str(error)
    if isinstance(error, KeyError) and error.args:
        message = str(error.args[0])
    message = one_line(message)
    return message[len("flag "):] if message.startswith("flag --") else message


def parse_flags(argv):
    """absl's flag parser for app.run: bad flags end the program with one line."""
    from absl import flags
    with flag_errors(argv):
        args = flags.FLAGS(argv)
        for name in _CONFIG_FLAGS:  # a config file that failed to load reports it lazily
            value = flags.FLAGS[name].value
            error = getattr(value, "_error", None)
            if isinstance(error, BaseException):
                raise error
    return args


def run_absl_main(main):
    """absl's app.run(main), with a VidrlError printed as `error: ...` (no traceback),
    and bad flags likewise (see the module docstring)."""
    from absl import app
    try:
        app.run(main, flags_parser=parse_flags)
    except VidrlError as e:
        fail(str(e))
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM (vidrl_jax.utils.signals)
        why = f" by {e}" if str(e) else ""
        print(f"interrupted{why}: work up to the last checkpoint is kept; run the same "
              f"command again to resume", file=sys.stderr)
        sys.exit(130)
