from ninja import Field, Schema


class IdentifierTypeSchema(Schema):
    """A kind of identifier. `pattern` is a regular expression every pid and identifier value of this
    type must fully match; empty means any value."""

    name: str = Field(..., description="Type name, e.g. `DOI`; used as `pid_type` and as identifier key.")
    pattern: str = Field("", description="Regular expression a value must fully match; empty: anything.")
