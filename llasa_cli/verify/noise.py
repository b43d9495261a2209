"""How far speech stands above noise: a blind signal-to-noise estimate (WADA-SNR), NumPy only.

WADA-SNR (C. Kim and R. M. Stern, "Robust signal-to-noise ratio estimation based on waveform
amplitude distribution analysis", Interspeech 2008) assumes that clean speech samples have a
Gamma-distributed amplitude (shape SPEECH_GAMMA_SHAPE) and noise is Gaussian. The statistic

    G = log(mean |x|) - mean(log |x|)

of a mixture falls from log(0.4) - digamma(0.4) = 1.645 (clean speech) to 0.5 log(2/pi) +
(euler_gamma + log 2) / 2 = 0.409 (pure Gaussian noise) as the SNR drops, and does not depend on
the level. The curve G(SNR) is computed here once, from fixed random draws (the same draws at
every SNR, so it is smooth and increasing), and a clip's SNR is read off it by interpolation,
clamped to MIN_SNR_DB..MAX_SNR_DB. The SNR is over the whole clip (pauses included), with the
speech power as the numerator, as in the paper.

Speech buried in noise is flagged even when the transcript comes out right (a stronger Whisper
hears through noise that tiny.en cannot).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

NOISY = "noisy"
SNR_DB = "snr_db"
SPEECH_GAMMA_SHAPE = 0.4
MIN_SNR_DB = -20.0
MAX_SNR_DB = 100.0
CURVE_STEP_DB = 1.0
CURVE_DRAWS = 100_000
CURVE_SEED = 0
# Samples smaller than this (exact digital silence) are lifted to it before the log, as in the
# reference implementation; such samples count as very clean.
AMPLITUDE_FLOOR = 1e-10
# Gaussian noise gives G = 0.409; a sine 0.24. Below 0.409 less this the clip is not speech in noise.
OUT_OF_MODEL_MARGIN = 0.05


@lru_cache(maxsize=1)
def wada_curve() -> tuple[np.ndarray, np.ndarray]:
    """(SNRs in dB, G at each): the statistic for Gamma speech plus Gaussian noise at that SNR."""
    rng = np.random.default_rng(CURVE_SEED)
    speech = rng.gamma(SPEECH_GAMMA_SHAPE, 1.0, CURVE_DRAWS) * rng.choice((-1.0, 1.0), CURVE_DRAWS)
    noise = rng.standard_normal(CURVE_DRAWS)
    speech_power = SPEECH_GAMMA_SHAPE * (SPEECH_GAMMA_SHAPE + 1.0)  # E[g^2] of Gamma(k, 1)
    snrs = np.arange(MIN_SNR_DB, MAX_SNR_DB + CURVE_STEP_DB / 2, CURVE_STEP_DB)
    values = np.array([_statistic(speech + noise * np.sqrt(speech_power / 10 ** (snr / 10))) for snr in snrs])
    return snrs, np.maximum.accumulate(values)  # increasing, for the interpolation


def _statistic(samples: np.ndarray) -> float:
    magnitudes = np.maximum(np.abs(samples), AMPLITUDE_FLOOR)
    return float(np.log(magnitudes.mean()) - np.log(magnitudes).mean())


def wada_snr(audio: np.ndarray) -> float | None:
    """Estimated SNR of a clip in dB, MIN_SNR_DB..MAX_SNR_DB; None where the estimator does not
    apply: an empty or all-zero clip, or one whose amplitudes are flatter than Gaussian noise's
    (G below the pure-noise value by more than OUT_OF_MODEL_MARGIN: a steady tone, a square wave),
    which neither speech nor speech in noise produces."""
    samples = np.asarray(audio, dtype=np.float64).reshape(-1)
    if samples.size == 0 or not np.isfinite(samples).all():
        return None
    samples = samples - samples.mean()
    peak = float(np.abs(samples).max())
    if peak <= 0.0:
        return None
    snrs, curve = wada_curve()
    statistic = _statistic(samples / peak)
    if statistic < curve[0] - OUT_OF_MODEL_MARGIN:
        return None
    return float(np.interp(statistic, curve, snrs))
