"""CoFInAl as the paper describes it: coarse-to-fine instruction alignment (Zhou et al., IJCAI 2024).

The released code (ZhouKanglei/CoFInAl_AQA) implements a different model (``cofinal-official``).
Shapes (B videos, T clips, D_C = ``in_dim``, D_P = ``proj_dim``, D_S = ``hidden_dim``,
P = ``n_procedures``, G grades, G' sub-grades)::

    clips H (B, T, D_C) --feature alignment (per clip)--> --Linear + BatchNorm (real clips)--> (B, T, D_P)
    TFM  (Eq. 7): P procedure queries attend over the real clips -> procedure features H~ (B, P, D_P),
         procedure_attention (B, P, T)
    GPM  (Eqs. 9-11): G grade prototypes attend over H~ -> H_C (B, G, D_S); M = softmax over grades
         of mean_d H_C (B, G); H_F = M * (H_C - Q_G) (B, G, D_S)
    coarse: grade_logits = MLP(flatten H_C) (B, G)            -> L_C = CE(grade_logits, s_C)
    FGS  (Eqs. 14-15): h_F = mean_g H_F (B, D_S); subgrade_logits = h_F E (B, G'), E a fixed simplex
         ETF (D_S, G')                                        -> L_F = 1/2 mean(<h_F/|h_F|, e_{s_F}> - 1)^2
    score (Eq. 6): grade * S_C + subgrade * S_F               -> L_S = 1/2 mean(s^ - s)^2 (Eq. 1)
    L_R (Eq. 8): KL(D || A) of the prototypes' angles A and grade distances D_ij = |i - j|

The choices where the paper is silent or ambiguous, and the ablation switches (``use_tfm``,
``use_gpm``, ``use_fgs``, ``use_graph_loss``): docs/models/cofinal.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Annotated, Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aqakit.data.scale import ScoreScale
from aqakit.errors import ConfigError
from aqakit.models.base import AQAModel, Explanation, GradeBand, Prediction
from aqakit.models.blocks import ClipProjection, masked_attention, masked_mean
from aqakit.models.config import DropoutRate, HParams, NonNegative, NonNegativeInt, Positive, PositiveInt, Range
from aqakit.models.etf import SimplexETF
from aqakit.models.registry import register_model

Decode = Literal["expected", "argmax"]
GradeTargets = Literal["hard", "two-hot"]
GradePositions = Literal["centres", "range"]  # where a grade sits on the score axis without the FGS
InputProjection = Literal["batchnorm", "none"]
Activation = Literal["sigmoid", "relu", "relu-k0.5", "leaky-relu"]
Alignment = Literal[0, 1, 2]  # 0: [0, D_C]; 1: [-1, 1]; 2: [0, 1] (None: as given)
ARCCOS_EPS = 1e-6


def _check_placement(placement: str) -> None:
    if placement not in get_args(GradePositions):
        raise ConfigError(f"grade positions must be one of {', '.join(get_args(GradePositions))}, got {placement!r}")


@dataclass(frozen=True)
class GradeScheme:
    """Grades of width S_C and sub-grades of width S_F over the normalised score range [0, 1]."""

    grade_width: float  # S_C
    subgrade_width: float  # S_F

    @property
    def n_grades(self) -> int:
        """G = ceil(1 / S_C) (a tolerance absorbs float error: 0.7 / 0.07 is 10.000000000000002)."""
        return math.ceil(1.0 / self.grade_width - 1e-9)

    @property
    def n_subgrades(self) -> int:
        """G' = ceil(S_C / S_F)."""
        return math.ceil(self.grade_width / self.subgrade_width - 1e-9)

    @property
    def middle_subgrade(self) -> float:
        """(G' - 1) / 2: the sub-grade's mean under a uniform distribution (the FGS's absence)."""
        return (self.n_subgrades - 1) / 2

    def decompose(self, score: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(B,) normalised scores -> grade (B,) long, sub-grade (B,) long, residual (B,).

        Scores are clamped to [0, 1] first; then ``couple(grade, subgrade) + residual`` gives the
        clamped score back, with ``0 <= residual <= S_F`` (= S_F only at the top of the range).
        """
        clamped = score.detach().double().clamp(0.0, 1.0)
        grade = torch.floor(clamped / self.grade_width).clamp(max=self.n_grades - 1)
        within = clamped - grade * self.grade_width
        subgrade = torch.floor(within / self.subgrade_width).clamp(0, self.n_subgrades - 1)
        residual = within - subgrade * self.subgrade_width
        return grade.long(), subgrade.long(), residual.to(score.dtype)

    def couple(self, grade: Tensor, subgrade: Tensor) -> Tensor:
        """Eq. 6: grade * S_C + sub-grade * S_F (indices or expectations)."""
        return grade * self.grade_width + subgrade * self.subgrade_width

    def place(self, grade: Tensor, placement: GradePositions) -> Tensor:
        """Grade indices or expected grades -> the normalised score they decode to without the FGS.

        ``"centres"``: grade * S_C + (G' - 1) / 2 * S_F (the grade's middle sub-grade);
        ``"range"``: grade / (G - 1), so the G grades sit at ``linspace(0, 1, G)``.
        """
        _check_placement(placement)
        if placement == "range":
            return grade / (self.n_grades - 1)
        return self.couple(grade, torch.full_like(grade, self.middle_subgrade))

    def two_hot(self, score: Tensor, placement: GradePositions) -> Tensor:
        """(B,) normalised scores -> (B, G) grade distributions whose expected grade g~ decodes to the
        score (``place(g~, placement) == score``), spread over the two grades either side of g~.

        g~ is clamped to [0, G - 1], so a score below the first grade's place (above the last's) is
        the first (last) grade alone.
        """
        _check_placement(placement)
        if placement == "range":
            first, step = 0.0, 1.0 / (self.n_grades - 1)
        else:
            first, step = self.couple(0.0, self.middle_subgrade), self.grade_width
        position = ((score.detach().double() - first) / step).clamp(0.0, self.n_grades - 1)
        lower = torch.floor(position).clamp(max=self.n_grades - 2).long()
        upper_weight = position - lower  # in [0, 1]
        # out of place (one-hot products), so the batched ensemble can vmap it
        lower_hot = F.one_hot(lower, self.n_grades).to(torch.float64)  # (B, G)
        upper_hot = F.one_hot(lower + 1, self.n_grades).to(torch.float64)
        targets = lower_hot * (1.0 - upper_weight)[:, None] + upper_hot * upper_weight[:, None]
        return targets.to(score.dtype)


def align_features(features: Tensor, mode: Alignment | None) -> Tensor:
    """Per-clip feature alignment (appendix Table S4): min-max over the last axis, then the range.

    mode 0 -> [0, D], 1 -> [-1, 1], 2 -> [0, 1], None -> unchanged. A constant clip maps to the
    bottom of the range.
    """
    if mode is None:
        return features
    low = features.amin(-1, keepdim=True)
    spread = (features.amax(-1, keepdim=True) - low).clamp_min(1e-6)
    unit = (features - low) / spread  # [0, 1]
    if mode == 0:
        return unit * features.shape[-1]
    if mode == 1:
        return 2.0 * unit - 1.0
    return unit


def quality_graph_loss(prototypes: Tensor, eps: float = ARCCOS_EPS) -> Tensor:
    """Eq. 8: KL(D || A) between grade distances D_ij = |i - j| and prototype angles A.

    prototypes (G, D) -> a scalar. Diagonals are dropped and rows divided by their sums, so both
    are row distributions over the other G - 1 prototypes; the result is the mean over rows.
    The cosine is clamped to [-1 + eps, 1 - eps], so arccos and its gradient stay finite; it is
    computed in float32 even under autocast (in bfloat16, 1 - 1e-6 rounds to 1 and arccos' gradient
    becomes infinite).
    """
    n_grades = prototypes.shape[0]
    with torch.autocast(prototypes.device.type, enabled=False):
        unit = F.normalize(prototypes.float(), dim=-1)
        angles = torch.arccos((unit @ unit.T).clamp(-1.0 + eps, 1.0 - eps))  # (G, G), in (0, pi)
    index = torch.arange(n_grades, device=prototypes.device)
    distances = (index[:, None] - index[None, :]).abs().to(angles.dtype)  # (G, G)
    off_diagonal = ~torch.eye(n_grades, dtype=torch.bool, device=prototypes.device)
    target = distances[off_diagonal].view(n_grades, n_grades - 1)
    predicted = angles[off_diagonal].view(n_grades, n_grades - 1)
    target = target / target.sum(1, keepdim=True)
    predicted = predicted / predicted.sum(1, keepdim=True)
    return (target * (target.log() - predicted.log())).sum(1).mean()


class TemporalFusion(nn.Module):
    """TFM (Eq. 7): P procedure queries attend over the real clips -> (B, P, D_P) and (B, P, T)."""

    def __init__(self, in_dim: int, proj_dim: int, n_procedures: int) -> None:
        super().__init__()
        self.n_procedures, self.proj_dim = n_procedures, proj_dim
        self.key = nn.Linear(in_dim, proj_dim)
        self.value = nn.Linear(in_dim, proj_dim)
        self.query = nn.Linear(in_dim, n_procedures * proj_dim)  # Q_T: P queries per clip

    def forward(self, clips: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        # mean over clips of Linear(clip) == Linear(mean clip): Q~_T without the (B, T, P, D_P) tensor
        procedure_queries = self.query(masked_mean(clips, mask)).view(-1, self.n_procedures, self.proj_dim)
        return masked_attention(procedure_queries, self.key(clips), self.value(clips), mask)  # (B, P, D_P), (B, P, T)


class GradeParsing(nn.Module):
    """GPM (Eqs. 9-11): grade prototypes cross-attend to the memory -> H_C, H_F, M, attention."""

    def __init__(self, memory_dim: int, proj_dim: int, hidden_dim: int, n_grades: int) -> None:
        super().__init__()
        self.grade_prototypes = nn.Parameter(torch.randn(n_grades, proj_dim))  # G, (G, D_P)
        self.query = nn.Linear(proj_dim, hidden_dim)
        self.key = nn.Linear(memory_dim, hidden_dim)
        self.value = nn.Linear(memory_dim, hidden_dim)

    def forward(self, memory: Tensor, memory_mask: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """memory (B, N, D_m), memory_mask (B, N) -> H_C, H_F (B, G, D_S), M (B, G), attention (B, G, N)."""
        prototype_queries = self.query(self.grade_prototypes)  # Q_G (G, D_S)
        coarse, attention = masked_attention(prototype_queries, self.key(memory), self.value(memory), memory_mask)
        # H_C (B, G, D_S), attention (B, G, N)
        grade_mask = coarse.mean(-1).softmax(-1)  # M (B, G)
        fine = grade_mask.unsqueeze(-1) * (coarse - prototype_queries)  # H_F (B, G, D_S)
        return coarse, fine, grade_mask, attention


class ScaledReLU(nn.Module):
    """``k * relu(x)``: the appendix's "ReLU (k = 0.5)", read as a ReLU of slope k."""

    def __init__(self, slope: float) -> None:
        super().__init__()
        self.slope = slope

    def forward(self, x: Tensor) -> Tensor:
        return self.slope * F.relu(x)


def _activation(name: Activation) -> nn.Module:
    return {
        "sigmoid": nn.Sigmoid,
        "relu": nn.ReLU,
        "relu-k0.5": lambda: ScaledReLU(0.5),
        "leaky-relu": nn.LeakyReLU,
    }[name]()


@dataclass(frozen=True)
class CoFInAlConfig(HParams):
    """CoFInAl's hyper-parameters; ``grade_width`` (S_C) and ``subgrade_width`` (S_F) are fractions
    of the normalised score range. What each choice means: docs/models/cofinal.md."""

    proj_dim: PositiveInt = 512
    hidden_dim: PositiveInt = 256
    n_procedures: PositiveInt = 5
    grade_width: Annotated[float, Range(0.0, 1.0, low_open=True, high_open=True)] = 0.25
    subgrade_width: Positive = 0.025
    dropout: DropoutRate = 0.3
    lambda_score: NonNegative = 1.0
    lambda_grade: NonNegative = 1.0
    lambda_subgrade: NonNegative = 1.0
    lambda_graph: NonNegative = 1.0
    decode: Decode = "expected"
    grade_targets: GradeTargets = "hard"
    grade_positions: GradePositions = "centres"
    feature_alignment: Alignment | None = 1
    final_activation: Activation = "leaky-relu"
    input_projection: InputProjection = "batchnorm"
    use_tfm: bool = True
    use_gpm: bool = True
    use_fgs: bool = True
    use_graph_loss: bool = True
    etf_seed: NonNegativeInt = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.subgrade_width < self.grade_width:
            raise ConfigError(
                f"subgrade_width ({self.subgrade_width}) must be below grade_width ({self.grade_width}) (>= 2 sub-grades)"
            )
        n_subgrades = GradeScheme(self.grade_width, self.subgrade_width).n_subgrades
        if self.use_fgs and self.hidden_dim < n_subgrades:
            raise ConfigError(
                f"hidden_dim ({self.hidden_dim}) must be at least the number of sub-grades "
                f"({n_subgrades}) for their simplex ETF"
            )
        if self.grade_targets == "two-hot" and self.use_fgs:
            raise ConfigError(
                "grade_targets='two-hot' places the score inside its grade, which is the FGS's job; "
                "set use_fgs=false with it (or grade_targets='hard', the paper's)"
            )
        if self.grade_positions == "range" and self.grade_targets != "two-hot":
            raise ConfigError(
                "grade_positions='range' moves the grades off the centres of the paper's grade labels "
                "floor(s / S_C); use it with grade_targets='two-hot' (and use_fgs=false)"
            )


@register_model
class CoFInAl(AQAModel):
    """CoFInAl (IJCAI 2024) as the paper describes it (see the module docstring).

    Parts (batch first): ``grade_probs`` (B, G), ``grade_logits`` (B, G), ``grade_index`` (B,),
    ``expected_score`` (B,) normalised; with the TFM ``procedure_attention`` (B, P, T); with the
    GPM ``grade_mask`` M (B, G) and ``grade_attention`` (B, G, P) (or (B, G, T) without the TFM);
    with the FGS ``subgrade_probs`` (B, G'), ``subgrade_logits`` (B, G'), ``subgrade_index`` (B,)
    and ``fine_feature`` h_F (B, D_S).
    """

    name = "cofinal"
    config_class = CoFInAlConfig
    config: CoFInAlConfig
    explanations = (
        Explanation(
            "grade_probs", "bars", "Grade probabilities",
            "The coarse grade classifier's belief in each grade (equal bands of the training score range, "
            "grade 1 the lowest); the tallest bar is the grade the score is decoded from.",
            item="grade (1 = lowest)", value="probability",
        ),
        Explanation(
            "subgrade_probs", "bars", "Sub-grade probabilities",
            "Where in its grade's band the fine-grained scoring places the performance (sub-grade 1 = the "
            "band's bottom); the score adds this sub-grade to the grade.",
            item="sub-grade (1 = lowest)", value="probability",
        ),
        Explanation(
            "procedure_attention", "clip_map", "Procedures over time",
            "Each row is one procedure the temporal fusion module parses the routine into; dark cells are "
            "the clips it reads (each row sums to 1 over the clips).",
            item="procedure", value="attention",
        ),
        Explanation(
            "grade_attention", "matrix", "Which procedures each grade reads",
            "Each row is a grade prototype; dark cells are the procedures it attends to when judging that grade "
            "(each row sums to 1).",
            item="grade", value="attention", columns="procedure",
        ),
    )  # fmt: skip

    def __init__(self, in_dim: int, score_scale: ScoreScale, config: CoFInAlConfig | None = None) -> None:
        super().__init__(in_dim, score_scale, config)
        config = self.config
        proj_dim, hidden_dim, dropout = config.proj_dim, config.hidden_dim, config.dropout
        use_tfm, use_gpm = config.use_tfm, config.use_gpm
        self.scheme = GradeScheme(config.grade_width, config.subgrade_width)
        n_grades, n_subgrades = self.scheme.n_grades, self.scheme.n_subgrades
        self.decode, self.feature_alignment, self.grade_targets = config.decode, config.feature_alignment, config.grade_targets
        self.grade_positions = config.grade_positions  # where a grade sits on the score axis without the FGS
        self.lambda_score, self.lambda_grade = config.lambda_score, config.lambda_grade
        self.lambda_subgrade = config.lambda_subgrade
        self.lambda_graph = config.lambda_graph if use_gpm and config.use_graph_loss else None

        self.clip_projection = ClipProjection(in_dim, [proj_dim]) if config.input_projection == "batchnorm" else None
        clip_dim = in_dim if self.clip_projection is None else proj_dim
        self.tfm = TemporalFusion(clip_dim, proj_dim, config.n_procedures) if use_tfm else None
        memory_dim = proj_dim if use_tfm else clip_dim
        self.dropout = nn.Dropout(dropout)
        self.gpm = GradeParsing(memory_dim, proj_dim, hidden_dim, n_grades) if use_gpm else None
        self.pooled_embedding = None if use_gpm else nn.Linear(memory_dim, hidden_dim)
        self.grade_classifier = nn.Sequential(
            nn.Linear(n_grades * hidden_dim if use_gpm else hidden_dim, hidden_dim),
            _activation(config.final_activation),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, n_grades),
        )
        self.subgrade_etf = SimplexETF(hidden_dim, n_subgrades, config.etf_seed) if config.use_fgs else None
        if not use_tfm:  # without the TFM the grades attend to the clips themselves
            self.explanations = tuple(
                replace(spec, kind="clip_map", caption="Each row is a grade prototype; dark cells are the clips it "
                        "attends to when judging that grade (each row sums to 1).")
                if spec.part == "grade_attention" else spec for spec in self.explanations
            )  # fmt: skip

    def predict_normalised(self, features: Tensor, mask: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        clips = align_features(features, self.feature_alignment)  # (B, T, D_C)
        if self.clip_projection is not None:
            clips = self.clip_projection(clips, mask)  # (B, T, D_P), BatchNorm over real clips
        parts: dict[str, Tensor] = {}
        if self.tfm is not None:
            memory, parts["procedure_attention"] = self.tfm(clips, mask)  # (B, P, D_P), (B, P, T)
            memory_mask = mask.new_ones(memory.shape[:2])
        else:  # w/o TFM: clips go straight to the GPM
            memory, memory_mask = clips, mask
        memory = self.dropout(memory)

        if self.gpm is not None:
            coarse, fine, parts["grade_mask"], parts["grade_attention"] = self.gpm(memory, memory_mask)
            coarse_feature, fine_feature = coarse.flatten(1), fine.mean(1)  # (B, G*D_S), h_F (B, D_S)
        else:  # w/o GPM: one pooled feature feeds both heads
            coarse_feature = fine_feature = self.pooled_embedding(masked_mean(memory, memory_mask))

        grade_logits = self.grade_classifier(coarse_feature)  # (B, G)
        grade_probs = grade_logits.softmax(-1)
        grades = torch.arange(grade_logits.shape[1], device=features.device, dtype=grade_probs.dtype)
        expected_grade, grade_index = grade_probs @ grades, grade_logits.argmax(-1)
        parts.update(grade_logits=grade_logits, grade_probs=grade_probs, grade_index=grade_index)

        if self.subgrade_etf is not None:
            subgrade_logits = self.subgrade_etf(fine_feature)  # <h_F, e_j> (B, G')
            subgrade_probs = subgrade_logits.softmax(-1)
            subgrades = torch.arange(subgrade_logits.shape[1], device=features.device, dtype=subgrade_probs.dtype)
            expected_subgrade, subgrade_index = subgrade_probs @ subgrades, subgrade_logits.argmax(-1)
            parts.update(
                subgrade_logits=subgrade_logits, subgrade_probs=subgrade_probs,
                subgrade_index=subgrade_index, fine_feature=fine_feature,
            )  # fmt: skip
        else:
            expected_subgrade = subgrade_index = None

        parts["expected_score"] = self._score(expected_grade, expected_subgrade)
        if self.decode == "expected":
            return parts["expected_score"], parts
        argmax_subgrade = None if subgrade_index is None else subgrade_index.to(grade_probs.dtype)
        return self._score(grade_index.to(grade_probs.dtype), argmax_subgrade), parts

    def grade_band(self, parts: dict[str, Tensor]) -> GradeBand:
        """The most probable grade g, covering the normalised scores [g S_C, (g + 1) S_C] (the last band ends at 1)."""
        index = parts["grade_index"]  # (B,)
        low = index.double() * self.scheme.grade_width
        return GradeBand(index, low, (low + self.scheme.grade_width).clamp(max=1.0), self.scheme.n_grades)

    def _score(self, grade: Tensor, subgrade: Tensor | None) -> Tensor:
        """Eq. 6 with the FGS; without it (``subgrade`` None) no fine information, so the grade
        decodes to its place (by default its middle sub-grade)."""
        if subgrade is None:
            return self.scheme.place(grade, self.grade_positions)
        return self.scheme.couple(grade, subgrade)

    def loss(self, prediction: Prediction, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        parts = prediction.parts
        target = self.normalised_target(batch).to(parts["expected_score"].device)
        grade_label, subgrade_label, _ = self.scheme.decompose(target)
        if self.grade_targets == "two-hot":  # the grades either side of the score, expectation = score
            grade_label = self.scheme.two_hot(target, self.grade_positions)
        terms = {
            "score": self.lambda_score * 0.5 * (parts["expected_score"] - target).pow(2).mean(),  # L_S, Eq. 1
            "grade": self.lambda_grade * F.cross_entropy(parts["grade_logits"], grade_label),  # L_C
        }
        if self.subgrade_etf is not None:  # L_F, Eq. 15
            unit_fine = F.normalize(parts["fine_feature"], dim=-1)  # (B, D_S)
            true_prototypes = self.subgrade_etf.vectors.T[subgrade_label]  # e_{s_F} (B, D_S)
            alignment = (unit_fine * true_prototypes).sum(-1)
            terms["subgrade"] = self.lambda_subgrade * 0.5 * (alignment - 1.0).pow(2).mean()
        if self.lambda_graph is not None:  # L_R, Eq. 8
            terms["graph"] = self.lambda_graph * quality_graph_loss(self.gpm.grade_prototypes)
        return terms

