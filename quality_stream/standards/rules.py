"""Rule kinds for Chinese national standards; each compiles to vectorised polars expressions."""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl
from pydantic import Field, model_validator

from quality_stream.model import RuleSpec
from quality_stream.rules.base import Rule, rule_kind
from quality_stream.standards import codesets
from quality_stream.standards.contact import (
    GENDER_CODES,
    LANDLINE,
    LANDLINE_LOCAL_OK,
    MOBILE,
    POSTAL,
    pattern_valid_expr,
)
from quality_stream.standards.credit_code import credit_code_valid_expr, org_code_valid_expr
from quality_stream.standards.division import Match, _sets, division_codes_known, division_known_expr
from quality_stream.standards.id_numbers import IdNumbers, birth_yyyymmdd, citizen_ids_valid, digits_number

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


def id_numbers(df: pl.DataFrame, field: str, ctx) -> IdNumbers:
    """The batch's ID numbers of `field`, parsed once for all the ID rules of the batch."""
    key = ("id_numbers", field)
    if key not in ctx.cache:
        ctx.cache[key] = IdNumbers(df.get_column(field))
    return ctx.cache[key]


def _id_divisions_known(ids: IdNumbers, match: Match) -> np.ndarray:
    """Rows whose first six characters are digits naming a known division."""
    rows, d = ids.fixed(6, prefix=True)
    digits = (d <= 9).all(axis=1)
    rows, codes = rows[digits], digits_number(d[digits])
    return ids.mask(rows[division_codes_known(codes, match)])


@rule_kind
class CitizenId(Rule):
    kind, settings = "citizen_id", CitizenIdSpec

    def masks(self, df, ctx):
        out = []
        for field in self.spec.fields:
            ids = id_numbers(df, field, ctx)
            ok = citizen_ids_valid(ids, ctx.now.date(), self.spec.allow_15_digit)
            if self.spec.check_division:
                ok = ok & pl.Series(_id_divisions_known(ids, "prefecture"))
            out.append((field, ~ok.fill_null(True)))
        return out

    def describe_failure(self, field):
        return f"{field} is not a valid citizen ID number (GB 11643)"


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
        ids = id_numbers(df, s.id_field, ctx)
        rows, d = ids.well_formed()
        out = []
        if s.birth_field:
            from quality_stream.expr import _to_date

            given = _to_date(pl.col(s.birth_field))
            ymd = [part.cast(pl.Int64) for part in (given.dt.year(), given.dt.month(), given.dt.day())]
            as_number = (ymd[0] * 10_000 + ymd[1] * 100 + ymd[2]).fill_null(-1)
            given = df.select(as_number).to_series().to_numpy()[rows]
            born = birth_yyyymmdd(d)  # 0: not a real date, compared with nothing (as a null)
            out.append((s.birth_field, pl.Series(ids.mask(rows[(born != 0) & (given != -1) & (born != given)]))))
        if s.gender_field:
            odd = d[:, 16] % 2 == 1
            g = pl.col(s.gender_field).cast(pl.Utf8, strict=False).str.strip_chars()
            sexes = df.select(
                g.is_in(s.male_values).fill_null(False), g.is_in(s.female_values).fill_null(False).alias("f")
            )
            is_m, is_f = sexes.to_series(0).to_numpy()[rows], sexes.to_series(1).to_numpy()[rows]
            out.append((s.gender_field, pl.Series(ids.mask(rows[(is_m & ~odd) | (is_f & odd)]))))
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
        ids = id_numbers(df, self.spec.id_field, ctx)
        return [(self.spec.id_field, pl.Series(~_id_divisions_known(ids, self.spec.match) & ~ids.null))]

    def describe_failure(self, field):
        return f"{field}: division prefix is not a known GB/T 2260 code"
