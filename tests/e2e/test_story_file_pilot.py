"""A whole pilot in the real CLI, then: which file each GLM request was given as the story.

P1 writes docs/design/<id>-ux.md and P7 writes docs/features/<id>-*.md; the default story glob
(docs/**/{story}*.md) matches both, and both sort before docs/stories/. Every GLM request,
from P2 to P7, must still carry the story file, and a checkpoint deleted afterwards to start
over must be rebuilt from it.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict

from mcp_server.checkpoints import open_checkpoint
from mcp_server.demo.glm_replies import CannedGlm
from mcp_server.demo.run import prepare_project, replies_dir, run_session
from tests.e2e.conftest import session_env
from tests.fakes.fake_anthropic import Scenario, fake_claude
from tests.fakes.fake_glm import FakeGlm

STORIES = ("01.2", "01.3")
STORY_SECTION = re.compile(r"## Story \(([^)]+)\)")


def test_every_glm_request_of_a_pilot_is_given_the_story_file(claude, tmp_path):
    project = prepare_project(tmp_path)
    story_files = {story: next((project / "docs" / "stories").glob(f"{story}-*.md")).relative_to(project).as_posix()
                   for story in STORIES}
    with fake_claude(Scenario()) as anthropic, FakeGlm(responder=CannedGlm(replies_dir())) as glm:
        run = run_session(claude, project, f"/hybrid:pilot {','.join(STORIES)}",
                          session_env(tmp_path / "home", anthropic.base_url, glm.base_url), timeout_s=900)
        requests = list(glm.requests)
    assert run.returncode == 0, run.stderr[-3000:]
    for story in STORIES:  # the traps were there: the outputs the glob also matches
        assert (project / "docs" / "design" / f"{story}-ux.md").is_file()
        assert list((project / "docs" / "features").glob(f"{story}-*.md"))

    given: dict[str, list[str]] = defaultdict(list)
    for request in requests:
        text = json.dumps(request.body["messages"], ensure_ascii=False)
        [path] = set(STORY_SECTION.findall(text))
        given[path.split("/")[-1].split("-")[0]].append(path)
    print({story: len(paths) for story, paths in given.items()}, "GLM requests per story")
    assert set(given) == set(STORIES)
    for story in STORIES:
        assert set(given[story]) == {story_files[story]}, given[story]
        assert len(given[story]) >= 3  # write_tests, implement, write_docs at least

    for story in STORIES:  # start over: the rebuilt checkpoint comes from the story file too
        (project / ".claude" / "checkpoints" / f"{story}.yaml").unlink()
        assert open_checkpoint(project, story, "docs/**/{story}*.md").data["story_file"] == story_files[story]


def test_an_id_without_a_story_file_or_a_typo_starts_no_agent(claude, tmp_path):
    project = prepare_project(tmp_path)
    for arguments, said in (("01.2,99.9", "nothing started: no story file for 99.9"),
                            ("01.2 fronted=01.2", "unknown option: fronted (did you mean frontend?)")):
        with fake_claude(Scenario()) as anthropic, FakeGlm(responder=CannedGlm(replies_dir())) as glm:
            run = run_session(claude, project, f"/hybrid:pilot {arguments}",
                              session_env(tmp_path / "home", anthropic.base_url, glm.base_url), timeout_s=300)
            labels = [served.label for served in anthropic.served]
            assert not glm.requests
        assert run.returncode == 0, run.stderr[-2000:]
        assert said in run.result["result"], run.result
        assert set(labels) == {"orchestrator"}, labels  # no agent, no P1
        assert not (project / ".claude" / "checkpoints").exists() and not (project / "docs" / "design").exists()
