"""Every command in README.md, docs/*.md and experiments/results/README.md parses, and
every relative link resolves.

A command is a line of a fenced code block (backslash continuations joined, variables set
earlier in the block expanded) or an inline code span, split at `&&`, `;` and `|`, that
runs `python -m MODULE` or `bash SCRIPT` (after `nohup`, `nice -n N` and `VAR=value`
prefixes). For it:
  - the module (importable) or the script (a file) exists;
  - `--config=FILE[:VARIANTS]` names a config file whose get_config(VARIANTS) loads;
  - each `--config.FIELD=` (and each key of experiments.sweep's `--set`, `--grid`,
    `--set_for`) is a field of that config; `--grid reward=`/`variant=` values are variants;
  - every other `--flag` is defined in the module's source (absl `DEFINE_*("flag"`,
    argparse `add_argument("--flag"`; experiments.bench also its `--what` bench's), or for a
    script appears in its text;
  - a positional path under experiments/, configs/, docs/ or tests/ exists.
Modules outside the repository (pytest) are only checked to be importable. Offline, a few
seconds: nothing is run, the flags are read from source.
"""
import glob
import importlib.util
import os
import re
import shlex

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ["README.md", "experiments/results/README.md"] + sorted(
    os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))
DEFAULT_CONFIG = "configs/metaworld.py"
SWEEP_KEYS = ("--set", "--grid", "--set_for")   # experiments.sweep: KEY=VALUE arguments
VARIANT_KEYS = ("reward", "variant")            # sweep grid keys that name config variants
PATH_ROOTS = ("experiments/", "configs/", "docs/", "tests/")


# --- reading the docs -----------------------------------------------------------------

def command_lines(text):
    """The shell lines of a markdown text: fenced blocks' lines (continuations joined,
    `NAME=value` lines expanded into later ones) and inline code spans."""
    lines = []
    for block in re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M):
        variables = {}
        for line in block.replace("\\\n", " ").splitlines():
            line = expand(line, variables)
            m = re.fullmatch(r"\s*([A-Za-z_]\w*)=(\"[^\"]*\"|'[^']*'|\S*)\s*", line)
            if m:
                variables[m.group(1)] = m.group(2).strip("\"'")
            else:
                lines.append(line)
    prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    lines += [span.replace("\n", " ") for span in re.findall(r"`([^`]+)`", prose)]
    return lines


def expand(line, variables):
    for name, value in variables.items():
        line = re.sub(rf"\$\{{{name}\}}|\${name}\b", lambda _: value, line)
    return line


def commands(line):
    """The commands of a shell line: argument lists, wrappers and redirections removed."""
    line = re.sub(r"(^|\s)#.*$", "", line)                 # a comment
    line = re.sub(r"\s\d*>>?&?\s*\S+", " ", line)          # redirections
    line = re.sub(r"\s&\s*$", "", line)                     # in the background
    out = []
    for part in re.split(r"&&|\|\||;|\|", line):
        try:
            args = [a.strip("[]") for a in shlex.split(part)]
        except ValueError:
            continue
        while args and (args[0] == "nohup" or re.fullmatch(r"[A-Za-z_]\w*=.*", args[0])):
            args = args[1:]
        if args[:2] == ["nice", "-n"]:
            args = args[3:]
        if args:
            out.append([a for a in args if a])
    return out


def links(text):
    """Relative link targets of a markdown text (not images, not web addresses)."""
    return [m for m in re.findall(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)", text)
            if not re.match(r"[a-z]+:", m)]


def anchors(path):
    """GitHub's anchors of the headings of a markdown file."""
    with open(path) as f:
        text = re.sub(r"^```.*?^```", "", f.read(), flags=re.S | re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.*)$", text, flags=re.M)}


# --- checking one command -------------------------------------------------------------

def module_path(module):
    """The source file of `module` inside the repository, None outside it; KeyError when
    it cannot be imported."""
    spec = importlib.util.find_spec(module)
    if spec is None:
        raise KeyError(module)
    origin = os.path.abspath(spec.origin or "")
    return origin if origin.startswith(ROOT + os.sep) else None


def defined_flags(path):
    with open(path) as f:
        source = f.read()
    names = set(re.findall(r"(?:DEFINE_\w+|define_config_file)\(\s*[\"'](\w+)[\"']", source))
    names |= set(re.findall(r"add_argument\(\s*[\"']--([\w-]+)[\"']", source))
    names |= set(re.findall(r"[\"']--no_?([\w-]+)[\"'],\s*dest=", source))
    return names


def load_config(arg):
    """get_config(VARIANTS) of `FILE[:VARIANTS]`; raises on a missing file or variant."""
    file, _, variants = arg.partition(":")
    spec = importlib.util.spec_from_file_location("_docs_config", os.path.join(ROOT, file))
    config_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(config_module)
    return config_module.get_config(variants or None)


def has_field(config, dotted):
    node = config
    for key in dotted.split("."):
        if not hasattr(node, "keys") or key not in node:
            return False
        node = node[key]
    return True


def flag_arguments(args):
    """[(flag name, value or None)] of an argument list (`--a=1`, `--set x=1`)."""
    out, i = [], 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            if not eq and "--" + name in SWEEP_KEYS and i + 1 < len(args):
                value, i = args[i + 1], i + 1
            out.append((name, value if (eq or "--" + name in SWEEP_KEYS) else None))
        i += 1
    return out


def config_problems(args, variants_arg):
    """Problems with the config file, its variants and the fields the command names."""
    try:
        config = load_config(variants_arg)
    except Exception as e:  # noqa: BLE001 - any failure to load is the finding
        return [f"--config={variants_arg} does not load: {e}"]
    problems = []
    for name, value in flag_arguments(args):
        if name.startswith("config."):
            field = name[len("config."):]
            if not has_field(config, field):
                problems.append(f"--{name}: no such config field")
        elif "--" + name in SWEEP_KEYS and value:
            for setting in value.split(":") if name == "set_for" else [value]:
                key, _, values = setting.partition("=")
                if key in VARIANT_KEYS:
                    for variant in values.split(","):
                        try:
                            load_config(f"{variants_arg.partition(':')[0]}:{variant}")
                        except Exception:  # noqa: BLE001
                            problems.append(f"--{name} {setting}: no variant {variant!r}")
                elif not has_field(config, key):
                    problems.append(f"--{name} {setting}: no config field {key!r}")
    return problems


def check_python(args):
    module, rest = args[2], args[3:]
    try:
        path = module_path(module)
    except (KeyError, ModuleNotFoundError):
        return [f"no module {module}"]
    if path is None:
        return []
    names = defined_flags(path)
    what = dict(flag_arguments(rest)).get("what")
    if module == "experiments.bench" and what:
        bench = os.path.join(ROOT, "experiments", "benches", f"{what}.py")
        if not os.path.exists(bench):
            return [f"experiments.bench: no bench --what={what}"]
        names |= defined_flags(bench)
    problems = [f"{module}: no flag --{name}" for name, _ in flag_arguments(rest)
                if not name.startswith("config.") and name not in names
                and not (name.startswith("no") and name[2:] in names)]
    if "config" in names:
        config = dict(flag_arguments(rest)).get("config") or DEFAULT_CONFIG
        problems += config_problems(rest, config)
    return problems + path_problems(rest)


def check_bash(args):
    script = os.path.join(ROOT, args[1])
    if not os.path.isfile(script):
        return [f"no script {args[1]}"]
    with open(script) as f:
        text = f.read()
    return [f"{args[1]}: no flag --{name}" for name, _ in flag_arguments(args[2:])
            if not re.search(rf"--{re.escape(name)}(?![\w-])", text)]


def path_problems(args):
    return [f"no file {a}" for a in args
            if a.startswith(PATH_ROOTS) and not re.search(r"[{}<>*|$]|[A-Z]{3,}", a)
            and not os.path.exists(os.path.join(ROOT, a))]


def check_command(args):
    """Problems with one command (an argument list); [] for commands not checked."""
    if args[:2] == ["python", "-m"] and len(args) > 2:
        return check_python(args)
    if args[0] == "bash" and len(args) > 1 and not args[1].startswith("-"):
        return check_bash(args)
    return []


def doc_problems(doc):
    with open(os.path.join(ROOT, doc)) as f:
        text = f.read()
    problems = []
    for line in command_lines(text):
        for args in commands(line):
            problems += [f"{doc}: `{' '.join(args)}`: {p}" for p in check_command(args)]
    for target in links(text):
        path, _, anchor = target.partition("#")
        full = os.path.normpath(os.path.join(ROOT, os.path.dirname(doc), path)) if path else \
            os.path.join(ROOT, doc)
        if not os.path.exists(full):
            problems.append(f"{doc}: link to a missing {target}")
        elif anchor and full.endswith(".md") and anchor not in anchors(full):
            problems.append(f"{doc}: link to a missing heading {target}")
    return problems


# --- tests ----------------------------------------------------------------------------

@pytest.mark.parametrize("doc", DOCS)
def test_every_command_and_link_of_the_doc_holds(doc, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert doc_problems(doc) == []


def test_the_docs_hold_commands_to_check():
    found = [args for doc in DOCS for line in command_lines(open(os.path.join(ROOT, doc)).read())
             for args in commands(line) if check_command(args) == []
             and (args[:2] == ["python", "-m"] or args[0] == "bash")]
    modules = {args[2] for args in found if args[0] == "python"}
    assert {"experiments.run", "experiments.sweep", "experiments.bench",
            "experiments.eval_reward", "experiments.studies.results_table"} <= modules
    assert any(args[0] == "bash" for args in found)


@pytest.mark.parametrize("line, problem", [
    ("python -m experiments.runn --config=configs/metaworld.py", "no module experiments.runn"),
    ("python -m experiments.run --config=configs/metaworld.py:smok", "does not load"),
    ("python -m experiments.run --config.agent.lrr=1e-4", "--config.agent.lrr: no such config"),
    ("python -m experiments.run --work_dir=runs/x", "experiments.run: no flag --work_dir"),
    ("python -m experiments.sweep --grid reward=sparce --workdir=x", "no variant 'sparce'"),
    ("python -m experiments.sweep --set agent.lrr=1 --workdir=x", "no config field 'agent.lrr'"),
    ("python -m experiments.sweep --set_for env.task=a:agent.steps=1 --workdir=x",
     "no config field 'agent.steps'"),
    ("python -m experiments.bench --what=pipline", "no bench --what=pipline"),
    ("python -m experiments.bench --what=envs --stepz=3", "no flag --stepz"),
    ("nohup nice -n 19 bash experiments/table.sh >> x.log 2>&1 &", "no script experiments/table.sh"),
    ("bash experiments/studies/table.sh --finished", "no flag --finished"),
    ("python -m experiments.studies.goals experiments/results/nothing.csv",
     "no file experiments/results/nothing.csv"),
])
def test_the_check_finds_each_kind_of_broken_command(line, problem, monkeypatch):
    monkeypatch.chdir(ROOT)
    found = [p for args in commands(line) for p in check_command(args)]
    assert any(problem in p for p in found), found


def test_block_lines_are_joined_and_variables_expanded():
    text = ('```bash\nSETS="--set seeds=3 \\\n  --set agent.total_steps=10"\n'
            'python -m experiments.sweep $SETS --workdir=x  # a comment\n```\n'
            'and `python -m experiments.run --stages=agent` inline\n')
    assert [commands(line) for line in command_lines(text)] == [
        [["python", "-m", "experiments.sweep", "--set", "seeds=3", "--set",
          "agent.total_steps=10", "--workdir=x"]],
        [["python", "-m", "experiments.run", "--stages=agent"]]]
