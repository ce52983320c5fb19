"""Probes: violation-of-expectation surprise, baselines, linear and consequence probes (DESIGN 4).

Files, in data-flow order:

    config.py       the probe settings (experiments/voe.yaml), ProbeError
    items.py        an item set on disk: items.json checked, comparisons as pairs of item indices
    checkpoint.py   load a checkpoint (weights_only), random networks, model/items compatibility
    surprise.py     per-frame latent prediction error s(t), teacher forced with H frames
    scores.py       calibration (mu, sigma), event scores over [t*, t* + w], curves around t*
    baselines.py    pixel difference, any-defection, last-move, ideal observer
    metrics.py      every metric as a plain function (accuracy, sum rule, AUROC, d_z, CIs, ...)
    evaluate.py     the metrics applied to one scorer on one item set
    linear.py       ridge / logistic probes from embeddings to ground truth
    consequence.py  action-conditioned rollouts: ego cooperates vs defects
    pipeline.py     one item set through every scorer
    plots.py        figures; markdown.py tables
    cli.py          `pwm probe`; report.py `pwm report`

metrics.json (written by `pwm probe`; NaN and infinities are null):

    pwm_version, config (voe.yaml as used),
    model: {name, checkpoint, world, observation, history, context, parameters},
    items: [ {name, path, world, num_items, num_groups, action_mode, context,
              calibration: {scorer: {mu, sigma, frames, source}},
              scorers: {model | random_init | pixel_diff | any_defection | last_move |
                        ideal_observer: {
                  auroc: {agg}, auroc_chance_band: {agg: [lo, hi]}, spearman_ideal: {agg: {rho, p}},
                  spearman_ideal_lawful: {agg: {rho, p}},     (law violations left out)
                  selectivity: {agg},                                 (teleport vs visual control)
                  comparisons: {NAME: {n_pairs, K, prefix_matched, AGG: {paired_accuracy, ci,
                      d_z, d_z_ci, mean_diff, relative_surprise, wilcoxon_p, auroc, chance_band,
                      pass, outcomes}}},
                  time_lock: {NAME: {pre_max_abs, locked, peak_latency}},   (curve scorers)
                  dose_response: {M2|Q: {agg: {K, paired_accuracy, ci, n_pairs}}},
                  verdict: {claimed, tests: {M1, R, Q}},                   (Polis items)
                  headline}},
              chance: {networks, values: {NAME | auroc: {agg: [one per network]}}},
              curves: {tau, model | random_init: {condition: {mean, se}}},
              per_item: {item_id, condition, group_id, t_star, scores: {scorer: {agg: [...]}}},
              linear_probes: {source, targets: {target: {metric, model, random_init[, majority]}}}
            } ],
    consequence (with --consequence): {model | random_init: {pairs, test_pairs, horizon,
        trust_to_ego | distance_to_ego: {predicted_effect, true_effect, encoded_effect, gap,
        gap_se, final_gap}}}
"""
