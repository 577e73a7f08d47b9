"""Manual attestations: requirements only a person can confirm.

They are listed in the report with the statement to sign, never guessed.
"""

from __future__ import annotations

from pytest_amipolicy.catalogue import policy
from pytest_amipolicy.facts import Facts
from pytest_amipolicy.verdicts import Outcome, Verdict

FAMILY = "manual"


def _attest(statement: str) -> Outcome:
    return Outcome(Verdict.MANUAL, "to attest: " + statement)


@policy(
    "MANUAL-CONSENT",
    family=FAMILY,
    platforms=("manual",),
    summary="no customer registration or data collection without the buyer's consent",
    remediation="Make registration optional and collect data only after explicit consent.",
)
def check_consent(facts: Facts) -> Outcome:
    return _attest(
        "The software does not make the buyer register, and collects no data "
        "about the buyer or their use without their explicit consent."
    )


@policy(
    "MANUAL-NO-LIMITS",
    family=FAMILY,
    platforms=("manual",),
    summary="no time limits, trial expiry or user limits in the software",
    remediation="Remove trial periods and user or seat limits; pricing is done by AWS Marketplace.",
)
def check_no_limits(facts: Facts) -> Outcome:
    return _attest(
        "The software runs without a time limit or expiry and without a cap on "
        "users, seats or capacity beyond what the listing's pricing states."
    )


@policy(
    "MANUAL-NO-UPSELL",
    family=FAMILY,
    platforms=("manual",),
    summary="no redirect to other sales channels and no upsell language",
    remediation=(
        "Remove links and wording that send buyers to buy elsewhere or upgrade "
        "outside AWS Marketplace."
    ),
)
def check_no_upsell(facts: Facts) -> Outcome:
    return _attest(
        "Nothing in the image (login banners, web pages, documentation) sends the "
        "buyer to buy, upgrade or license the product outside AWS Marketplace."
    )


@policy(
    "MANUAL-SELF-CONTAINED",
    family=FAMILY,
    platforms=("manual",),
    summary="everything the buyer needs to run the product is in the AMI",
    remediation=(
        "Ship all software and licences in the image; no separate download or key "
        "needed to start."
    ),
)
def check_self_contained(facts: Facts) -> Outcome:
    return _attest(
        "The AMI holds everything the buyer needs to use the product: no "
        "additional download, licence key or external account is required to start it."
    )
