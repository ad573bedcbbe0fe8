"""SeftConfig: the section ``methods.seft`` (every SEFT choice is a field here).

Defaults are sized for the smoke preset (SmolLM2-135M, two rounds of 100 prompts, minutes
on 2 cores); the paper-scale values belong in a preset. docs/seft.md describes each field
and which ones follow the paper's text versus this project's reconstruction.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from harness.config import DatasetSpec, ModelRef, Strict, TrainOverrides
from harness.engines.base import Sampling

Decision = Literal["keep", "minor", "major"]
Source = Literal["internal", "external"]


class GapThresholds(Strict):
    """How a quality gap to the best response becomes a decision.

    gap <= keep_within: ``keep`` (a tie with the best always keeps); gap >= major_from:
    ``major``; in between: ``minor``.
    """

    keep_within: float = Field(0.0, ge=0)
    major_from: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> GapThresholds:
        if self.major_from <= self.keep_within:
            raise ValueError(f"major_from ({self.major_from}) must be above keep_within ({self.keep_within})")
        return self


class DecisionConfig(Strict):
    """Decision thresholds per annotation kind.

    ``score``: gaps in the dataset's score units (UltraFeedback overall_score is 1-10,
    fine-grained_score 1-5). ``rank``: gaps in rank places (Nectar ranks 1-7).
    ``pair``: the decision for a pair's rejected reply when its scores give no gap.
    """

    score: GapThresholds = GapThresholds(keep_within=0.0, major_from=2.0)
    rank: GapThresholds = GapThresholds(keep_within=0.0, major_from=3.0)
    pair: Literal["minor", "major"] = "major"


class DecodingConfig(Strict):
    """Sampling parameters for one generation role."""

    temperature: float = Field(ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_new_tokens: int = Field(ge=1)

    def sampling(self, seed: int, n: int = 1, stop: tuple[str, ...] = ()) -> Sampling:
        """Return these parameters as the engines' Sampling: ``n`` samples from ``seed``, ending at ``stop``."""
        return Sampling(temperature=self.temperature, top_p=self.top_p, max_new_tokens=self.max_new_tokens, seed=seed,
                        n=n, stop=stop)


class FilterConfig(Strict):
    """Which reviser outputs become training targets; every drop is counted by reason."""

    # A reviser output without a parseable decision: train on the original response (a counted
    # fallback), or drop it.
    on_unparseable: Literal["keep_original", "drop"] = "keep_original"
    min_words: int = Field(1, ge=0)
    # Degenerate repetition: the share of repeated word n-grams in a target.
    repetition_ngram: int = Field(4, ge=1)
    max_repeated_fraction: float = Field(0.5, gt=0, le=1)
    # Revision length / original length, in words (not applied to kept originals).
    min_length_ratio: float = Field(0.2, ge=0)
    max_length_ratio: float = Field(4.0, gt=0)
    # Also apply the empty / length / repetition checks to originals the reviser keeps.
    check_kept: bool = True

    @model_validator(mode="after")
    def _ratio_bounds(self) -> FilterConfig:
        if self.max_length_ratio <= self.min_length_ratio:
            raise ValueError(f"max_length_ratio ({self.max_length_ratio}) must be above min_length_ratio ({self.min_length_ratio})")
        return self


class ExternalSource(Strict):
    """External evolution: other models' responses (e.g. UltraFeedback completions) to revise.

    ``dataset`` gives ranked or preference records; each selected record contributes its
    first ``responses_per_prompt`` responses in record order (pairs: chosen, then rejected).
    """

    dataset: DatasetSpec
    responses_per_prompt: int = Field(1, ge=1)
    prompts_per_round: int | None = Field(None, ge=1)  # None: the internal prompts_per_round


class SeftConfig(Strict):
    """Everything SEFT decides: reviser, decisions, rounds, sampling, filters, evolution order."""

    # Reviser initialisation; None: the policy's base (models.policy).
    reviser_init: ModelRef | None = None
    # The reviser's SFT recipe (decision + target, completion-only loss) and the policy rounds' SFT recipe,
    # each over the experiment's `train` (a LoRA `train` applies to both unless a recipe sets `lora`).
    reviser_train: TrainOverrides = TrainOverrides()
    train: TrainOverrides = TrainOverrides()
    template: str = "reviser-v1.txt"   # file in the configuration folders' seft/ (or a path); its sha256 keys the reviser data
    decisions: DecisionConfig = DecisionConfig()
    # Reviser examples whose response or target is longer than this (words) are skipped
    # rather than truncated in training; None keeps all.
    max_example_words: int | None = Field(200, ge=1)
    rounds: int = Field(2, ge=1)
    samples_per_prompt: int = Field(2, ge=1)
    pool_fraction: float = Field(1.0, gt=0, le=1)      # share of the unannotated pool used (scaling studies)
    prompts_per_round: int | None = Field(100, ge=1)   # None: the whole (fractional) pool every round
    sampling: DecodingConfig = DecodingConfig(temperature=0.7, top_p=0.95, max_new_tokens=128)
    reviser_decoding: DecodingConfig = DecodingConfig(temperature=0.0, max_new_tokens=256)
    filters: FilterConfig = FilterConfig()
    evolution_order: tuple[Source, ...] = ("internal",)
    # The first round whose sources include the external one; earlier rounds revise only the
    # policy's own samples ("first internal, then external"). 1: every round.
    external_from_round: int = Field(1, ge=1)
    external: ExternalSource | None = None
    evaluate_rounds: Literal["final", "every"] = "final"
    # Reward of each target before (its original) and after revision, under the rlhf baseline's
    # reward model (stage train/reward: trained once, shared with the rlhf run through the store).
    reward_scoring: bool = False
    # Revised targets per round judged against their original by the AlpacaEval judge (0: off).
    judge_revisions: int = Field(0, ge=0)
    record_examples: int = Field(5, ge=0)   # (original, decision, target) examples kept in each round record

    @model_validator(mode="after")
    def _consistent(self) -> SeftConfig:
        if not self.evolution_order or len(set(self.evolution_order)) != len(self.evolution_order):
            raise ValueError(f"evolution_order must name each source once, got {list(self.evolution_order)}")
        if "external" in self.evolution_order and self.external is None:
            raise ValueError("evolution_order includes 'external' but external (the source dataset) is not set")
        if self.external is not None and "external" not in self.evolution_order:
            raise ValueError("external is set but evolution_order does not include 'external'")
        if self.external_from_round > 1 and "internal" not in self.evolution_order:
            raise ValueError(f"external_from_round {self.external_from_round} leaves the rounds before it without a "
                             "source: add 'internal' to evolution_order")
        if self.reviser_decoding.max_new_tokens <= self.sampling.max_new_tokens:
            raise ValueError(
                f"reviser_decoding.max_new_tokens ({self.reviser_decoding.max_new_tokens}) must exceed "
                f"sampling.max_new_tokens ({self.sampling.max_new_tokens}): the reviser rewrites whole samples plus tags"
            )
        return self


def round_sources(seft: SeftConfig, round_index: int) -> tuple[Source, ...]:
    """Return the sources round ``round_index`` (1-based) revises, in evolution_order."""
    return tuple(s for s in seft.evolution_order if s != "external" or round_index >= seft.external_from_round)


def reviser_init_model(seft: SeftConfig, models) -> ModelRef:
    """Return the reviser's initial weights: seft.reviser_init, else the policy's base (models.policy)."""
    return seft.reviser_init or models.policy
