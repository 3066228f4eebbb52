from ninja import Field

from mediastore.schema_utils import RequestSchema


class IdentifierTypeSchema(RequestSchema):
    """A kind of identifier. `pattern` is a regular expression every pid and identifier value of this
    type must fully match; empty means any value. Patterns run on RE2, which matches in linear time:
    backreferences, lookaround and possessive quantifiers are refused (422), and `\\d`, `\\w`, `\\s`
    are ASCII (`\\pN`, `\\pL` match Unicode digits and letters)."""

    name: str = Field(..., description="Type name, e.g. `DOI`; used as `pid_type` and as identifier key.")
    pattern: str = Field("", description="RE2 regular expression a value must fully match; empty: anything.")
