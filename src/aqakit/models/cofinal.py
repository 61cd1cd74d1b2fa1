"""CoFInAl as the paper describes it: coarse-to-fine instruction alignment.

Zhou, Li, Cai, Wang, Zhang, Liang. "CoFInAl: Enhancing Action Quality Assessment with
Coarse-to-Fine Instruction Alignment", IJCAI 2024. The released code (ZhouKanglei/CoFInAl_AQA)
implements a different model (GDLT plus an ETF head over score digits); this is the paper's.

Shapes (B videos, T clips, D_C = ``in_dim``, D_P = ``proj_dim``, D_S = ``hidden_dim``,
P = ``n_procedures``, G grades, G' sub-grades)::

    clips H (B, T, D_C) --feature alignment (per clip)--> --Linear + BatchNorm (real clips)--> (B, T, D_P)
    TFM  (Eq. 7): K_T, V_T = Linear(H) (B, T, D_P); Q~_T = masked mean over clips of Linear(H),
         (B, P, D_P); procedure_attention = softmax(Q~_T K_T^T / sqrt(D_P)) over real clips (B, P, T);
         procedure features H~ = procedure_attention V_T (B, P, D_P)
    GPM  (Eqs. 9-11): grade prototypes (G, D_P); Q_G = Linear(prototypes) (G, D_S);
         K_G, V_G = Linear(H~) (B, P, D_S); H_C = softmax(Q_G K_G^T / sqrt(D_S)) V_G (B, G, D_S);
         M = softmax over grades of mean_d H_C (B, G); H_F = M * (H_C - Q_G) (B, G, D_S)
    coarse: grade_logits = MLP(flatten H_C) (B, G)            -> L_C = CE(grade_logits, s_C)
    FGS  (Eqs. 14-15): h_F = mean_g H_F (B, D_S); subgrade_logits = h_F E (B, G'), E a fixed simplex
         ETF (D_S, G')                                        -> L_F = 1/2 mean(<h_F/|h_F|, e_{s_F}> - 1)^2
    score (Eq. 6): grade * S_C + subgrade * S_F               -> L_S = 1/2 mean(s^ - s)^2 (Eq. 1)
    L_R (Eq. 8): KL(D || A) of the prototypes' angles A and grade distances D_ij = |i - j|

Choices where the paper is silent or ambiguous (docs/models/cofinal.md lists the alternatives):

- **Score space.** Models learn in the [0, 1] space of the dataset's :class:`ScoreScale`, so the
  paper's range S is 1 and ``grade_width`` (S_C) and ``subgrade_width`` (S_F) are fractions of the
  range: G = ceil(1 / S_C), G' = ceil(S_C / S_F). The paper gives S_C and S_F no values; its Fig. 4
  discussion favours four grades (S_C = 0.25) and G' = 10 (S_F = 0.025) is our default. Labels
  (Sect. 3.1, with its typo fixed): s_C = floor(s / S_C), s_F = floor((s - s_C S_C) / S_F), with s
  clamped to [0, 1] and both clamped to the last class, so a score of exactly 1 is the top cell.
- **Decoding.** Eq. 6 uses argmax grade and sub-grade, which has no gradient: L_S is computed on
  the *expected* score (softmax-expected grade and sub-grade). ``decode="expected"`` (default)
  also predicts that continuous score; ``decode="argmax"`` predicts Eq. 6 itself. Sub-grade
  probabilities are the softmax of the raw inner products <h_F, e_j> of Eq. 14.
- **Grade targets.** ``grade_targets="hard"`` (default) is the paper's L_C, cross-entropy against
  s_C. Its optimum is one-hot, which pulls the expected score of every video in a grade to that
  grade's centre. ``"two-hot"`` (without the FGS) spreads the target over the two grades whose
  centres (grade * S_C + the middle sub-grade's S_F share) enclose the score, so that the expected
  grade decodes to the score and L_C agrees with L_S (:meth:`GradeScheme.two_hot`).
- **Where a grade sits without the FGS.** ``grade_positions="centres"`` (default): grade g decodes
  to g * S_C + (G' - 1) / 2 * S_F, its middle sub-grade, so the expected score can only span
  [(G' - 1) / 2 * S_F, (G - 1) S_C + (G' - 1) / 2 * S_F] ([0.1125, 0.8625] with four grades): the
  training videos beyond it (8 % of Fis-V TES above it) all get the last grade alone as target and
  a score the model cannot reach. ``"range"`` (two-hot targets only) puts the G grades at
  ``linspace(0, 1, G)``, the bottom and top of the training range, as GDLT's Likert anchors.
- **Input projection.** The paper derives K_T, Q_T, V_T from the clip features "by the linear
  transformation" and says CoFInAl builds on GDLT (Table 2), whose input projection is
  1x1-conv + BatchNorm 1024 -> 512 -> 256: exactly D_C -> D_P -> D_S. ``input_projection="batchnorm"``
  (default) puts GDLT's first stage (:class:`ClipProjection`: Linear D_C -> D_P + BatchNorm over the
  real clips) before the TFM, whose Linear maps then act in D_P. ``"none"`` is the literal reading:
  the TFM's Linear maps read the D_C features directly. Without any normalisation the network's
  output barely depends on its input at initialisation and SGD at the paper's lr hardly moves it
  (measured on a validation split of Fis-V train: 0.28 vs 0.70 Spearman after 20 epochs), hence the
  default. Q_T (C x P x D_P) averaged over clips equals the same Linear applied to the mean clip,
  which is how it is computed.
- **Prototypes in D_S.** Eq. 11 subtracts G (in D_P) from H_C (in D_S); we subtract the prototypes'
  query embedding Q_G (D_S), the prototypes as the cross-attention sees them.
- **Coarse MLP.** Linear(G * D_S, D_S) -> ``final_activation`` -> dropout -> Linear(D_S, G) on the
  flattened H_C. The appendix's "activation of the final layer transforming features into grade
  predictions" is this hidden activation (the FGS has no learnable layer).
- **Feature alignment** (appendix, Table S4): each clip feature is min-max normalised over its D_C
  features and mapped to [0, D_C] (mode 0), [-1, 1] (mode 1, the paper's better one, default) or
  [0, 1] (mode 2); ``None`` keeps the features as given.
- **Weight of L_S.** Eq. 1 gives the score loss no weight and the paper does not say in which
  units its scores are. Here they are in [0, 1], where L_S is 20-100 times smaller than the
  classification terms late in training (docs/results/cofinal-fisv.md); ``lambda_score``
  (default 1, the paper's loss) scales it. ``lambda_score = 1 / S_C**2`` measures the score error
  in grade widths, the units of the grade cross-entropy.
- **Dropout** on the procedure features H~ (on the clips without TFM) and inside the coarse MLP.
- **L_R**: both matrices lose their diagonal and each row is divided by its sum, so row i is a
  distribution over the other G-1 prototypes; L_R is the mean over rows of KL(D_i || A_i). The
  cosine is clamped to [-1 + 1e-6, 1 - 1e-6] before arccos, so identical prototypes give a finite
  loss and a finite (zero) gradient.

Ablations (paper Tables 3 and S6), one code path: ``use_tfm=False`` feeds the (projected) clips
straight to the GPM, whose keys and values then read every real clip under the padding mask;
``use_gpm=False`` has no prototypes, no mask M and no L_R: the masked mean of the TFM output
(or of the clips) is embedded by Linear(-> D_S) and is both the MLP's input and h_F;
``use_fgs=False`` drops the ETF and L_F: with no fine information the sub-grade is its mean under a
uniform distribution, (G' - 1) / 2, in both decodes (the middle of the predicted grade; with
``grade_positions="range"`` each grade decodes to its place in ``linspace(0, 1, G)`` instead);
``use_graph_loss=False`` drops L_R.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aqakit.data.scale import ScoreScale
from aqakit.errors import ConfigError
from aqakit.models import register_model
from aqakit.models.base import AQAModel, Prediction
from aqakit.models.blocks import ClipProjection, masked_mean, masked_softmax
from aqakit.models.etf import SimplexETF

DECODES = ("expected", "argmax")
GRADE_TARGETS = ("hard", "two-hot")
GRADE_POSITIONS = ("centres", "range")  # where a grade sits on the score axis without the FGS
INPUT_PROJECTIONS = ("batchnorm", "none")
ACTIVATIONS = ("sigmoid", "relu", "relu-k0.5", "leaky-relu")
ALIGNMENTS = (None, 0, 1, 2)  # None: as given; 0: [0, D_C]; 1: [-1, 1]; 2: [0, 1]
ARCCOS_EPS = 1e-6


def _check_placement(placement: str) -> None:
    if placement not in GRADE_POSITIONS:
        raise ConfigError(f"grade positions must be one of {', '.join(GRADE_POSITIONS)}, got {placement!r}")


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

    def place(self, grade: Tensor, placement: str) -> Tensor:
        """Grade indices or expected grades -> the normalised score they decode to without the FGS.

        ``"centres"``: grade * S_C + (G' - 1) / 2 * S_F (the grade's middle sub-grade);
        ``"range"``: grade / (G - 1), so the G grades sit at ``linspace(0, 1, G)``.
        """
        _check_placement(placement)
        if placement == "range":
            return grade / (self.n_grades - 1)
        return self.couple(grade, torch.full_like(grade, self.middle_subgrade))

    def two_hot(self, score: Tensor, placement: str) -> Tensor:
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
        targets = torch.zeros(score.shape[0], self.n_grades, dtype=torch.float64, device=score.device)
        targets.scatter_(1, lower[:, None], (1.0 - upper_weight)[:, None])
        targets.scatter_(1, lower[:, None] + 1, upper_weight[:, None])
        return targets.to(score.dtype)


def align_features(features: Tensor, mode: int | None) -> Tensor:
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
        keys, values = self.key(clips), self.value(clips)  # (B, T, D_P)
        scores = procedure_queries @ keys.transpose(1, 2) / math.sqrt(self.proj_dim)  # (B, P, T)
        attention = masked_softmax(scores, mask.unsqueeze(1))  # (B, P, T), 0 on padding
        return attention @ values, attention  # (B, P, D_P)


class GradeParsing(nn.Module):
    """GPM (Eqs. 9-11): grade prototypes cross-attend to the memory -> H_C, H_F, M, attention."""

    def __init__(self, memory_dim: int, proj_dim: int, hidden_dim: int, n_grades: int) -> None:
        super().__init__()
        self.hidden_dim = hidden_dim
        self.grade_prototypes = nn.Parameter(torch.randn(n_grades, proj_dim))  # G, (G, D_P)
        self.query = nn.Linear(proj_dim, hidden_dim)
        self.key = nn.Linear(memory_dim, hidden_dim)
        self.value = nn.Linear(memory_dim, hidden_dim)

    def forward(self, memory: Tensor, memory_mask: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """memory (B, N, D_m), memory_mask (B, N) -> H_C, H_F (B, G, D_S), M (B, G), attention (B, G, N)."""
        prototype_queries = self.query(self.grade_prototypes)  # Q_G (G, D_S)
        keys, values = self.key(memory), self.value(memory)  # (B, N, D_S)
        scores = prototype_queries @ keys.transpose(1, 2) / math.sqrt(self.hidden_dim)  # (B, G, N)
        attention = masked_softmax(scores, memory_mask.unsqueeze(1))
        coarse = attention @ values  # H_C (B, G, D_S)
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


def _activation(name: str) -> nn.Module:
    return {
        "sigmoid": nn.Sigmoid,
        "relu": nn.ReLU,
        "relu-k0.5": lambda: ScaledReLU(0.5),
        "leaky-relu": nn.LeakyReLU,
    }[name]()


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

    def __init__(
        self,
        in_dim: int,
        score_scale: ScoreScale,
        proj_dim: int = 512,
        hidden_dim: int = 256,
        n_procedures: int = 5,
        grade_width: float = 0.25,
        subgrade_width: float = 0.025,
        dropout: float = 0.3,
        lambda_score: float = 1.0,
        lambda_grade: float = 1.0,
        lambda_subgrade: float = 1.0,
        lambda_graph: float = 1.0,
        decode: str = "expected",
        grade_targets: str = "hard",
        grade_positions: str = "centres",
        feature_alignment: int | None = 1,
        final_activation: str = "leaky-relu",
        input_projection: str = "batchnorm",
        use_tfm: bool = True,
        use_gpm: bool = True,
        use_fgs: bool = True,
        use_graph_loss: bool = True,
        etf_seed: int = 0,
    ) -> None:
        hparams: dict[str, Any] = dict(
            proj_dim=proj_dim, hidden_dim=hidden_dim, n_procedures=n_procedures,
            grade_width=grade_width, subgrade_width=subgrade_width, dropout=dropout,
            lambda_score=lambda_score, lambda_grade=lambda_grade, lambda_subgrade=lambda_subgrade,
            lambda_graph=lambda_graph, decode=decode, grade_targets=grade_targets, grade_positions=grade_positions,
            feature_alignment=feature_alignment,
            final_activation=final_activation, input_projection=input_projection,
            use_tfm=use_tfm, use_gpm=use_gpm, use_fgs=use_fgs, use_graph_loss=use_graph_loss,
            etf_seed=etf_seed,
        )  # fmt: skip
        super().__init__(in_dim, score_scale, hparams)
        _validate(hparams)
        self.scheme = GradeScheme(float(grade_width), float(subgrade_width))
        n_grades, n_subgrades = self.scheme.n_grades, self.scheme.n_subgrades
        self.decode, self.feature_alignment, self.grade_targets = decode, feature_alignment, grade_targets
        self.grade_positions = grade_positions  # where a grade sits on the score axis without the FGS
        self.lambda_score, self.lambda_grade = float(lambda_score), float(lambda_grade)
        self.lambda_subgrade = float(lambda_subgrade)
        self.lambda_graph = float(lambda_graph) if use_gpm and use_graph_loss else None

        self.clip_projection = ClipProjection(in_dim, [proj_dim]) if input_projection == "batchnorm" else None
        clip_dim = in_dim if self.clip_projection is None else proj_dim
        self.tfm = TemporalFusion(clip_dim, proj_dim, n_procedures) if use_tfm else None
        memory_dim = proj_dim if use_tfm else clip_dim
        self.dropout = nn.Dropout(dropout)
        self.gpm = GradeParsing(memory_dim, proj_dim, hidden_dim, n_grades) if use_gpm else None
        self.pooled_embedding = None if use_gpm else nn.Linear(memory_dim, hidden_dim)
        self.grade_classifier = nn.Sequential(
            nn.Linear(n_grades * hidden_dim if use_gpm else hidden_dim, hidden_dim),
            _activation(final_activation),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, n_grades),
        )
        self.subgrade_etf = SimplexETF(hidden_dim, n_subgrades, etf_seed) if use_fgs else None

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


def _validate(hp: dict[str, Any]) -> None:
    """Raise ConfigError on a CoFInAl hyper-parameter that cannot build a model."""
    for key in ("proj_dim", "hidden_dim", "n_procedures"):
        value = hp[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"cofinal: {key} must be a positive integer, got {value!r}")
    seed = hp["etf_seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"cofinal: etf_seed must be a non-negative integer, got {seed!r}")
    for key in ("use_tfm", "use_gpm", "use_fgs", "use_graph_loss"):
        if not isinstance(hp[key], bool):
            raise ConfigError(f"cofinal: {key} must be true or false, got {hp[key]!r}")
    grade_width, subgrade_width = _number(hp, "grade_width"), _number(hp, "subgrade_width")
    if not 0.0 < grade_width < 1.0:
        raise ConfigError(
            f"cofinal: grade_width must be in (0, 1) (a fraction of the score range, >= 2 grades), got {grade_width!r}"
        )
    if not 0.0 < subgrade_width < grade_width:
        raise ConfigError(
            f"cofinal: subgrade_width must be in (0, grade_width={grade_width}) (>= 2 sub-grades), "
            f"got {subgrade_width!r}"
        )
    n_subgrades = GradeScheme(grade_width, subgrade_width).n_subgrades
    if hp["use_fgs"] and hp["hidden_dim"] < n_subgrades:
        raise ConfigError(
            f"cofinal: hidden_dim ({hp['hidden_dim']}) must be at least the number of sub-grades "
            f"({n_subgrades}) for their simplex ETF"
        )
    if not 0.0 <= _number(hp, "dropout") < 1.0:
        raise ConfigError(f"cofinal: dropout must be in [0, 1), got {hp['dropout']!r}")
    for key in ("lambda_score", "lambda_grade", "lambda_subgrade", "lambda_graph"):
        if not _number(hp, key) >= 0.0:
            raise ConfigError(f"cofinal: {key} must be a non-negative number, got {hp[key]!r}")
    if hp["input_projection"] not in INPUT_PROJECTIONS:
        raise ConfigError(
            f"cofinal: input_projection must be one of {', '.join(INPUT_PROJECTIONS)}, got {hp['input_projection']!r}"
        )
    if hp["decode"] not in DECODES:
        raise ConfigError(f"cofinal: decode must be one of {', '.join(DECODES)}, got {hp['decode']!r}")
    if hp["grade_targets"] not in GRADE_TARGETS:
        raise ConfigError(
            f"cofinal: grade_targets must be one of {', '.join(GRADE_TARGETS)}, got {hp['grade_targets']!r}"
        )
    if hp["grade_targets"] == "two-hot" and hp["use_fgs"]:
        raise ConfigError(
            "cofinal: grade_targets='two-hot' places the score inside its grade, which is the FGS's job; "
            "set use_fgs=false with it (or grade_targets='hard', the paper's)"
        )
    if hp["grade_positions"] not in GRADE_POSITIONS:
        raise ConfigError(
            f"cofinal: grade_positions must be one of {', '.join(GRADE_POSITIONS)}, got {hp['grade_positions']!r}"
        )
    if hp["grade_positions"] == "range" and hp["grade_targets"] != "two-hot":
        raise ConfigError(
            "cofinal: grade_positions='range' moves the grades off the centres of the paper's grade labels "
            "floor(s / S_C); use it with grade_targets='two-hot' (and use_fgs=false)"
        )
    if hp["final_activation"] not in ACTIVATIONS:
        raise ConfigError(
            f"cofinal: final_activation must be one of {', '.join(ACTIVATIONS)}, got {hp['final_activation']!r}"
        )
    alignment = hp["feature_alignment"]
    if isinstance(alignment, bool) or alignment not in ALIGNMENTS:
        raise ConfigError(f"cofinal: feature_alignment must be 0, 1, 2 or null, got {alignment!r}")


def _number(hp: dict[str, Any], key: str) -> float:
    value = hp[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"cofinal: {key} must be a number, got {value!r}")
    return float(value)
