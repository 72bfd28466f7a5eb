# Edge-case reference values for tests/analyses/test_r_edge_cases.py, computed by R (stats).
#
# Reads cohort40.csv next to this script and writes r_edge_cases.json. Run from this folder:
#     Rscript r_edge_cases.R
# Needs R >= 4.0 with jsonlite. Plain R calls with their defaults, nothing re-implemented:
#
# - lm() with no residual degrees of freedom (complete cases <= coefficients): R still returns the estimates
#   of the exact fit and its R-squared (0 for an intercept-only fit); standard errors, p-values and confint()
#   are NaN (written null). Terms aliased because there are fewer rows than coefficients are NA (null).
#   The constant-outcome case is given inline (its R-squared is NaN: null).
# - wilcox.test(paired = TRUE) when every difference is zero: V = 0, p-value NaN (null).

suppressPackageStartupMessages(library(jsonlite))

cohort <- read.csv("cohort40.csv", stringsAsFactors = FALSE)
cohort$villalta_gain <- cohort$villalta_baseline - cohort$villalta_3m
cohort$civiq20_gain <- cohort$civiq20_baseline - cohort$civiq20_3m
complete <- cohort[complete.cases(cohort), ]

fin <- function(x) if (length(x) == 0 || !is.finite(x)) NA else unname(x)

lm_one <- function(formula, rows, data = head(complete, rows)) {
  fit <- lm(formula, data = data)
  sm <- suppressWarnings(summary(fit))
  cf <- coef(fit)
  ci <- suppressWarnings(confint(fit))
  tab <- sm$coefficients
  terms <- list()
  for (nm in names(cf)) {
    out <- if (nm == "(Intercept)") "intercept" else nm
    if (is.na(cf[[nm]])) {
      terms[[out]] <- list(estimate = NA, std_error = NA, p = NA, ci_low = NA, ci_high = NA)
    } else {
      terms[[out]] <- list(estimate = tab[nm, "Estimate"], std_error = fin(tab[nm, "Std. Error"]),
                           p = fin(tab[nm, "Pr(>|t|)"]), ci_low = fin(ci[nm, 1]), ci_high = fin(ci[nm, 2]))
    }
  }
  list(formula = paste(deparse(formula, width.cutoff = 500L), collapse = " "), rows = rows,
       data = data[, all.vars(formula), drop = FALSE], n = nobs(fit),
       df_residual = fit$df.residual, r_squared = fin(sm$r.squared), terms = terms)
}

two <- villalta_gain ~ villalta_baseline + age
four <- villalta_gain ~ villalta_baseline + civiq20_baseline + age + stented_segments
regression <- list(
  two_terms_1_row = lm_one(two, 1),
  two_terms_2_rows = lm_one(two, 2),
  two_terms_3_rows = lm_one(two, 3),
  four_terms_4_rows = lm_one(four, 4),
  four_terms_5_rows = lm_one(four, 5),
  # a constant outcome: R-squared is 0 / 0 (NaN), not -Inf
  constant_outcome_2_rows = lm_one(villalta_gain ~ age, 2,
                                   data = data.frame(villalta_gain = c(14, 14), age = c(21, 18)))
)

wx_one <- function(x, y) {
  r <- suppressWarnings(wilcox.test(x, y, paired = TRUE))
  list(baseline = I(x), followup = I(y), v = unname(r$statistic), p = fin(r$p.value), method = r$method)
}
wilcoxon <- list(
  all_zero_1 = wx_one(c(7), c(7)),
  all_zero_3 = wx_one(c(3, 10, 22), c(3, 10, 22))
)

out <- list(
  generated_by = "tests/analyses/reference/r_edge_cases.R",
  r_version = R.version.string,
  regression = regression,
  wilcoxon = wilcoxon
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = 15, na = "null", null = "null", pretty = TRUE),
           "r_edge_cases.json")
