"""The reference agrees with itself and with the code: the endpoint list,
the error-code list and the configuration-key list are extracted from the
code (src/router.c, src/error.c, src/config.c + src/catalog.c), from docs/
(api.md, openai.md, configuration.md) and from web/docs.html, and must be
the same three sets everywhere.  Also: nothing in the repository points to
a file outside it (the team's brief is not shipped with the project).
No server needed."""
import html
import os
import re
import subprocess

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def read(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


# ---- the code --------------------------------------------------------------

def code_routes():
    src = read("src/router.c")
    out = set()
    for table, prefix in (("api_routes", "/api/v1/"), ("oai_routes", "/v1/")):
        body = re.search(r"%s\[\] = \{(.*?)\n\};" % table, src, re.S).group(1)
        for m, p in re.findall(r'\{\s*"(GET|POST)",\s*"([^"]+)"', body):
            out.add("%s %s%s" % (m, prefix, p.replace("*", "{id}")))
    return out


def code_errors():
    src = read("src/error.c")
    codes = set(re.findall(r'\] = \{ "([a-z_]+)", (\d+)', src))
    return {(c, int(s)) for c, s in codes if c != "ok"}


def code_keys():
    cfg = read("src/config.c")
    table = re.search(r"key_def keys\[\] = \{(.*?)\n\};", cfg, re.S).group(1)
    keys = set(re.findall(r'(?:STR|NUM|SW)\("(RELAYFORGE_[A-Z_]+)"', table))
    keys.add(re.search(r'#define KEY_CHAIN "([A-Z_]+)"', cfg).group(1))
    if 'getenv("RELAYFORGE_CONFIG")' in cfg:
        keys.add("RELAYFORGE_CONFIG")
    for env in re.findall(r'\.env = "([A-Z]+)"', read("src/catalog.c")):
        keys |= {env + "_API_KEY", "RELAYFORGE_%s_URL" % env,
                 "RELAYFORGE_%s_MODEL" % env}
    return keys


# ---- docs/ -----------------------------------------------------------------

def md_routes():
    api = read("docs/api.md")
    out = set(re.findall(r"^\| `(GET|POST)` \| `(/api/v1/[^`]+)` \|", api,
                         re.M))
    out = {"%s %s" % r for r in out}
    oai = read("docs/openai.md")
    out |= set(re.findall(r"^\| `((?:GET|POST) /v1/[^`]+)` \|", oai, re.M))
    return out


def md_errors():
    api = read("docs/api.md")
    sec = api[api.index("\n## Errors"):]
    return {(c, int(s)) for c, s in
            re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \|", sec, re.M)}


def expand(keys, providers):
    out = set()
    for k in keys:
        if "<P>" in k:
            out |= {k.replace("<P>", p) for p in providers}
        else:
            out.add(k)
    return out


def providers():
    return re.findall(r'\.env = "([A-Z]+)"', read("src/catalog.c"))


def md_keys():
    cfg = read("docs/configuration.md")
    sec = cfg[cfg.index("\n## Keys"):cfg.index("\n## ", cfg.index("\n## Keys") + 3)]
    keys = set()
    for line in sec.splitlines():
        if line.startswith("| `"):
            first = line.split(" | ")[0]
            keys |= set(re.findall(r"`([A-Z][A-Z_<>]+)`", first))
    psec = cfg[cfg.index("\n## Per-provider keys"):]
    for line in psec.splitlines():
        if line.startswith("| `") and "_API_KEY" in line:
            keys |= set(re.findall(r"`([A-Z][A-Z_]+)`", line))
    return expand(keys, providers())


# ---- web/docs.html ---------------------------------------------------------

def html_routes():
    page = read("web/docs.html")
    out = set()
    for m, p in re.findall(
            r'<span class="method (?:get|post)">(GET|POST)</span>'
            r'<(?:a|span)[^>]*>(/(?:api/)?v1/[^<]+)<', page):
        out.add("%s %s" % (m, html.unescape(p)))
    return out


def html_errors():
    page = read("web/docs.html")
    sec = page[page.index('id="errors-h"'):page.index('id="config-h"')]
    return {(c, int(s)) for c, s in re.findall(
        r'<tr><td><code>([a-z_]+)</code></td><td class="num">(\d{3})</td>',
        sec)}


def html_keys():
    page = read("web/docs.html")
    sec = page[page.index('id="config-h"'):page.index('id="deploy-h"')]
    keys = set()
    for row in re.findall(r"<tr><td>(.*?)</td>", sec):
        keys |= {html.unescape(k) for k in
                 re.findall(r"<code>([A-Z][A-Z_&;lgt]+)</code>", row)}
    return expand(keys, providers())


def same(what, code, docs, page):
    for name, got in (("docs/", docs), ("web/docs.html", page)):
        missing, extra = sorted(code - got), sorted(got - code)
        assert not missing and not extra, (
            "%s: %s lacks %s, has extra %s" % (what, name, missing, extra))


def test_endpoints_agree():
    code = code_routes()
    assert "GET /api/v1/metrics" in code and "POST /v1/chat/completions" in code
    same("endpoints", code, md_routes(), html_routes())


def test_error_codes_agree():
    code = code_errors()
    assert ("validation_error", 400) in code
    same("error codes", code, md_errors(), html_errors())


def test_configuration_keys_agree():
    code = code_keys()
    assert "RELAYFORGE_THREADS" in code and "GROQ_API_KEY" in code
    same("configuration keys", code, md_keys(), html_keys())


def test_nothing_points_outside_the_repository():
    """Every relative path a file names (dot-dot-slash) resolves inside the
    repository: a user who clones it has nothing beside it (docs/ holds
    the whole reference; see docs/architecture.md)."""
    dirs = [d for d in ("src", "include", "tests", "web", "deploy", "schema",
                        "mk", "docs", "cgi-bin", "Makefile", "README.md")
            if os.path.exists(os.path.join(ROOT, d))]
    r = subprocess.run(["grep", "-rnoE", "--exclude-dir=node_modules",
                        "--exclude-dir=build", r"(\.\./)+[A-Za-z_][A-Za-z0-9_.-]*"]
                       + dirs, cwd=ROOT, capture_output=True, text=True)
    bad = []
    for line in r.stdout.splitlines():
        path, _, rest = line.partition(":")
        ref = rest.partition(":")[2]
        # Relative to the file, or (as comments often mean it) to the
        # repository's root: either way it must land inside, on a file.
        near = os.path.normpath(os.path.join(ROOT, os.path.dirname(path), ref))
        top = os.path.normpath(os.path.join(ROOT, ref))
        inside = near.startswith(ROOT + os.sep)
        if not inside or (not os.path.exists(near)
                          and not top.startswith(ROOT + os.sep)):
            bad.append(line)
    assert not bad, "paths outside the repository:\n" + "\n".join(bad)
