"""Rule kinds for Chinese national standards; each compiles to vectorised polars expressions."""

from __future__ import annotations

from typing import Literal

import polars as pl
from pydantic import Field, model_validator

from quality_stream.model import RuleSpec
from quality_stream.rules.base import Rule, rule_kind
from quality_stream.standards import codesets
from quality_stream.standards.citizen_id import birth_date_expr, citizen_id_valid_expr, normalised
from quality_stream.standards.contact import (
    GENDER_CODES,
    LANDLINE,
    LANDLINE_LOCAL_OK,
    MOBILE,
    POSTAL,
    pattern_valid_expr,
)
from quality_stream.standards.credit_code import credit_code_valid_expr, org_code_valid_expr
from quality_stream.standards.division import Match, _sets, division_known_expr

codesets.register_code_set("gb2260_division", lambda: _sets()[0])


class FieldsSpec(RuleSpec):
    fields: list[str] = Field(min_length=1)


class _ValidExprRule(Rule):
    """Base for standards exposed as 'valid' expressions: fail = not valid (nulls pass)."""

    label = "value"

    def valid(self, col: pl.Expr, ctx) -> pl.Expr:
        raise NotImplementedError

    def field_mask(self, col, df, ctx):
        return ~self.valid(col, ctx).fill_null(True)

    def describe_failure(self, field):
        return f"{field} is not a valid {self.label}"


class CitizenIdSpec(FieldsSpec):
    kind: Literal["citizen_id"]
    allow_15_digit: bool = False
    # Also require the first six digits to be a known GB/T 2260 prefecture/province.
    check_division: bool = False


@rule_kind
class CitizenId(_ValidExprRule):
    kind, settings, label = "citizen_id", CitizenIdSpec, "citizen ID number (GB 11643)"

    def valid(self, col, ctx):
        ok = citizen_id_valid_expr(col, ctx.now.date(), self.spec.allow_15_digit)
        if self.spec.check_division:
            ok = ok & division_known_expr(normalised(col).str.slice(0, 6), "prefecture")
        return ok


class CreditCodeSpec(FieldsSpec):
    kind: Literal["social_credit_code"]
    # Also verify the embedded GB 11714 organisation code (characters 9-17).
    check_org_code: bool = False


@rule_kind
class SocialCreditCode(_ValidExprRule):
    kind, settings, label = "social_credit_code", CreditCodeSpec, "unified social credit code (GB 32100)"

    def valid(self, col, ctx):
        return credit_code_valid_expr(col, self.spec.check_org_code)


class OrgCodeSpec(FieldsSpec):
    kind: Literal["org_code"]


@rule_kind
class OrgCode(_ValidExprRule):
    kind, settings, label = "org_code", OrgCodeSpec, "organisation code (GB 11714)"

    def valid(self, col, ctx):
        return org_code_valid_expr(col)


class DivisionSpec(FieldsSpec):
    kind: Literal["division_code"]
    match: Match = "prefecture"


@rule_kind
class DivisionCode(_ValidExprRule):
    kind, settings, label = "division_code", DivisionSpec, "administrative division code (GB/T 2260)"

    def valid(self, col, ctx):
        s = col.cast(pl.Utf8, strict=False).str.strip_chars()
        return division_known_expr(col, self.spec.match) & (s.str.len_chars() == 6)


class GenderSpec(FieldsSpec):
    kind: Literal["gender_code"]


@rule_kind
class GenderCode(_ValidExprRule):
    kind, settings, label = "gender_code", GenderSpec, "gender code (GB/T 2261.1: 0, 1, 2, 9)"

    def valid(self, col, ctx):
        s = col.cast(pl.Utf8, strict=False).str.strip_chars()
        return pl.when(col.is_null()).then(None).otherwise(s.is_in(GENDER_CODES).fill_null(False))


class MobileSpec(FieldsSpec):
    kind: Literal["mobile"]


@rule_kind
class Mobile(_ValidExprRule):
    kind, settings, label = "mobile", MobileSpec, "mobile number"

    def valid(self, col, ctx):
        return pattern_valid_expr(col, MOBILE)


class LandlineSpec(FieldsSpec):
    kind: Literal["landline"]
    require_area_code: bool = True


@rule_kind
class Landline(_ValidExprRule):
    kind, settings, label = "landline", LandlineSpec, "landline number"

    def valid(self, col, ctx):
        return pattern_valid_expr(col, LANDLINE if self.spec.require_area_code else LANDLINE_LOCAL_OK)


class PostalSpec(FieldsSpec):
    kind: Literal["postal_code"]


@rule_kind
class PostalCode(_ValidExprRule):
    kind, settings, label = "postal_code", PostalSpec, "postal code"

    def valid(self, col, ctx):
        return pattern_valid_expr(col, POSTAL)


class IdBirthGenderSpec(RuleSpec):
    kind: Literal["id_matches_birth_gender"]
    id_field: str
    birth_field: str | None = None
    gender_field: str | None = None
    # Gender values as stored by the source; GB/T 2261.1 codes plus common variants.
    male_values: list[str] = ["1", "男", "M", "male"]
    female_values: list[str] = ["2", "女", "F", "female"]

    @model_validator(mode="after")
    def _something_to_compare(self):
        if not self.birth_field and not self.gender_field:
            raise ValueError("give birth_field and/or gender_field")
        return self


@rule_kind
class IdMatchesBirthGender(Rule):
    """Birth date and gender must agree with the ID number (digits 7-14; 17th digit odd = male).

    Only well-formed IDs are compared: malformed ones are the citizen_id rule's job, and
    unknown gender codes (0, 9) are not contradicted by anything.
    """

    kind, settings = "id_matches_birth_gender", IdBirthGenderSpec
    default_dimension = "consistency"

    def columns(self):
        s = self.spec
        return [c for c in (s.id_field, s.birth_field, s.gender_field) if c]

    def masks(self, df, ctx):
        s = self.spec
        idn = normalised(pl.col(s.id_field))
        well_formed = idn.str.contains(r"^[0-9]{17}[0-9X]$").fill_null(False)
        out = []
        if s.birth_field:
            from quality_stream.expr import _to_date

            born = birth_date_expr(idn)
            given = _to_date(pl.col(s.birth_field))
            out.append((s.birth_field, (well_formed & (born != given)).fill_null(False)))
        if s.gender_field:
            odd = idn.str.slice(16, 1).cast(pl.Int32, strict=False) % 2 == 1
            g = pl.col(s.gender_field).cast(pl.Utf8, strict=False).str.strip_chars()
            is_m = g.is_in(s.male_values)
            is_f = g.is_in(s.female_values)
            bad = well_formed & ((is_m & ~odd) | (is_f & odd))
            out.append((s.gender_field, bad.fill_null(False)))
        return out

    def describe_failure(self, field):
        what = "birth date" if field == self.spec.birth_field else "gender"
        return f"{field}: {what} disagrees with {self.spec.id_field}"


class IdDivisionSpec(RuleSpec):
    kind: Literal["id_division_known"]
    id_field: str
    match: Match = "prefecture"


@rule_kind
class IdDivisionKnown(Rule):
    kind, settings = "id_division_known", IdDivisionSpec
    default_dimension = "accuracy"

    def columns(self):
        return [self.spec.id_field]

    def masks(self, df, ctx):
        col = pl.col(self.spec.id_field)
        ok = division_known_expr(normalised(col).str.slice(0, 6), self.spec.match)
        return [(self.spec.id_field, ~ok.fill_null(True))]

    def describe_failure(self, field):
        return f"{field}: division prefix is not a known GB/T 2260 code"
