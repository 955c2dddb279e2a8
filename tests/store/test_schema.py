"""research.store.schema: every vocabulary's members say what they mean, and the data manual
names the values of the analysis's verdicts."""

from __future__ import annotations

import ast
import inspect
import re
from enum import StrEnum

from support.repo import REPO_DIR

from research.store import schema


def _vocabularies() -> list[type[StrEnum]]:
    return [v for v in vars(schema).values()
            if inspect.isclass(v) and issubclass(v, StrEnum) and v is not StrEnum]


def test_every_member_of_every_vocabulary_has_its_meaning_documented() -> None:
    tree = ast.parse(inspect.getsource(schema))
    undocumented = []
    documented_classes = set()
    for cls in tree.body:
        if not isinstance(cls, ast.ClassDef) or cls.name not in {
                v.__name__ for v in _vocabularies()}:
            continue
        documented_classes.add(cls.name)
        for node, following in zip(cls.body, [*cls.body[1:], None], strict=True):
            if isinstance(node, ast.Assign):
                documented = (isinstance(following, ast.Expr)
                              and isinstance(following.value, ast.Constant)
                              and isinstance(following.value.value, str))
                if not documented:
                    undocumented.append(f"{cls.name}.{ast.unparse(node.targets[0])}")
    assert documented_classes == {v.__name__ for v in _vocabularies()}
    assert len(documented_classes) >= 20  # the stored tables' and the analysis's vocabularies
    assert undocumented == []


def test_data_readme_names_every_enforcement_verdict_in_order() -> None:
    readme = (REPO_DIR / "data" / "README.md").read_text()
    section = readme.split("## Enforcement verdicts", 1)[1].split("\n#", 1)[0]
    bullets = {b.split("`", 2)[1]: " ".join(b.split()) for b in section.split("\n- ")[1:]}
    for function, vocabulary in (("mta_sts_verdicts", schema.StsVerdict),
                                 ("dane_verdicts", schema.DaneVerdict),
                                 ("enforcement_readiness", schema.Readiness)):
        named = re.findall(r"`([^`]+)`", bullets[function])
        assert [v for v in named if v in set(vocabulary)] == [m.value for m in vocabulary], \
            function


def test_groups_of_statuses_are_named_once_each_for_what_they_mean() -> None:
    status = schema.HostStatus
    # "not reached": no SMTP conversation, or never contacted; the analysis's one meaning
    not_reached = schema.NOT_REACHED
    assert not_reached == {status.TIMEOUT, status.REFUSED, status.UNRESOLVED,
                           status.SMTP_ERROR, status.OPTED_OUT}
    # every DNS outcome either gives MX hosts or has a category of its own
    assert set(schema.MAIL_DNS_STATUSES) | set(schema.DNS_CATEGORIES) == set(schema.DnsStatus)
    assert not set(schema.MAIL_DNS_STATUSES) & set(schema.DNS_CATEGORIES)


def test_every_table_says_what_its_rows_are() -> None:
    from research.store.schema import SESSION_TABLES, TABLE_DOCS, TABLES

    assert set(TABLE_DOCS) == set(TABLES) | set(SESSION_TABLES)
