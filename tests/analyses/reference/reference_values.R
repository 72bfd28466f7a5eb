# Reference values for tests/analyses/test_stats.py, computed by R (stats + survival).
#
# Reads the fixed inputs next to this script (cohort40.csv, km_cases.csv, wilcoxon_cases.csv) and writes
# r_reference.json. Run from this folder:
#     Rscript reference_values.R
# Needs R >= 4.0 with the survival and jsonlite packages
# (Debian: apt-get install r-base-core r-cran-survival r-cran-jsonlite). Numbers are written with 15
# significant digits (jsonlite's maximum), enough for the tests' 1e-9 relative tolerance; vectors are kept
# as JSON arrays even when of length 1 (I()).
#
# Every figure is the plain R call named beside it, with R's defaults unless stated; nothing here is
# re-implemented, so the fixture is an independent check of the Python code.

suppressPackageStartupMessages({
  library(survival)
  library(jsonlite)
})

MONTH_DAYS <- 30.4375  # contract: months = days / 30.4375

cohort <- read.csv("cohort40.csv", stringsAsFactors = FALSE)
km_cases <- read.csv("km_cases.csv", stringsAsFactors = FALSE)
wx_cases <- read.csv("wilcoxon_cases.csv", stringsAsFactors = FALSE)

na_null <- function(x) if (length(x) == 0 || is.na(x)) NA else unname(x)

# ---------------------------------------------------------------- quantile(type = 7)
quartile_inputs <- list(
  villalta_baseline = cohort$villalta_baseline,
  villalta_3m = cohort$villalta_3m,
  civiq20_baseline = cohort$civiq20_baseline,
  civiq20_3m = cohort$civiq20_3m,
  follow_up_months = cohort$days / MONTH_DAYS,
  small_even = c(1, 2, 3, 4, 10, 7),
  single = c(5)
)
quartiles <- lapply(names(quartile_inputs), function(nm) {
  x <- quartile_inputs[[nm]]
  list(name = nm, values = I(x), q = unname(quantile(x, c(0.25, 0.5, 0.75), type = 7, na.rm = TRUE)))
})

# ---------------------------------------------------------------- binom.test(x, n, conf.level)$conf.int
binom_inputs <- list(
  c(41, 42, 0.95), c(0, 42, 0.95), c(42, 42, 0.95), c(29, 42, 0.95), c(33, 42, 0.95), c(37, 42, 0.95),
  c(0, 1, 0.95), c(1, 1, 0.95), c(1, 2, 0.95), c(5, 17, 0.95), c(41, 42, 0.90), c(3, 10, 0.99)
)
binom <- lapply(binom_inputs, function(b) {
  ci <- binom.test(b[1], b[2], conf.level = b[3])$conf.int
  list(x = b[1], n = b[2], level = b[3], ci = c(ci[1], ci[2]))
})

# ---------------------------------------------------------------- survfit(conf.type = "log-log")
km_one <- function(time, lost, query) {
  fit <- survfit(Surv(time, lost) ~ 1, conf.type = "log-log")
  rev <- survfit(Surv(time, 1 - lost) ~ 1)
  tmax <- max(time)
  inside <- query[query <= tmax]
  s <- summary(fit, times = inside)
  # summary() returns one row per requested time (times inside the follow-up, none dropped)
  stopifnot(length(s$time) == length(inside))
  at <- c(
    lapply(seq_along(inside), function(i) list(
      t = inside[i], surv = s$surv[i], lower = na_null(s$lower[i]), upper = na_null(s$upper[i]),
      n_risk = s$n.risk[i]
    )),
    lapply(query[query > tmax], function(t) list(t = t, beyond = TRUE))
  )
  # the median R prints for the fit (survival:::survmean); quantile() differs only when S stays at 0.5
  # up to the last time (it then takes the midpoint with the last time): both recorded, the first is ours
  med_print <- summary(fit)$table[["median"]]
  med_quant <- unname(quantile(fit, 0.5, conf.int = FALSE))
  list(
    time = I(time), lost = I(lost), n = fit$n, events = sum(fit$n.event),
    curve_time = I(fit$time), surv = I(fit$surv), lower = I(fit$lower), upper = I(fit$upper),
    n_risk = I(fit$n.risk), n_event = I(fit$n.event),
    median = na_null(med_print), median_quantile = na_null(med_quant),
    reverse_median = na_null(summary(rev)$table[["median"]]),
    at = at
  )
}
km <- list()
for (case in unique(km_cases$case)) {
  d <- km_cases[km_cases$case == case, ]
  query <- sort(unique(c(seq(0, max(d$time) + 1, by = 0.5), d$time)))
  km[[case]] <- km_one(d$time, d$lost, query)
}
km[["cohort40"]] <- km_one(cohort$days / MONTH_DAYS, cohort$lost, c(0, 3, 6, 12, 24, 36, 42, 48, 60))

# ---------------------------------------------------------------- wilcox.test(x, y, paired = TRUE)
wx_one <- function(x, y) {
  r <- suppressWarnings(wilcox.test(x, y, paired = TRUE))
  d <- (x - y)[complete.cases(x, y)]
  list(baseline = I(x), followup = I(y), v = unname(r$statistic), p = r$p.value, method = r$method,
       n_nonzero = sum(d != 0))
}
wilcoxon <- list()
for (case in unique(wx_cases$case)) {
  d <- wx_cases[wx_cases$case == case, ]
  wilcoxon[[case]] <- wx_one(d$baseline, d$followup)
}
wilcoxon[["cohort40_villalta"]] <- wx_one(cohort$villalta_baseline, cohort$villalta_3m)
wilcoxon[["cohort40_civiq20"]] <- wx_one(cohort$civiq20_baseline, cohort$civiq20_3m)

# ---------------------------------------------------------------- lm + confint
cohort$villalta_gain <- cohort$villalta_baseline - cohort$villalta_3m
cohort$civiq20_gain <- cohort$civiq20_baseline - cohort$civiq20_3m
cohort$age_twice <- 2 * cohort$age
lm_one <- function(formula, rename = c()) {
  fit <- lm(formula, data = cohort)
  cf <- coef(fit)  # includes NA for aliased terms
  ci <- confint(fit)
  tab <- summary(fit)$coefficients  # rows of the estimable terms only
  terms <- list()
  for (nm in names(cf)) {
    out <- if (nm == "(Intercept)") "intercept" else if (nm %in% names(rename)) rename[[nm]] else nm
    if (is.na(cf[[nm]])) {
      terms[[out]] <- list(estimate = NA, std_error = NA, p = NA, ci_low = NA, ci_high = NA)
    } else {
      terms[[out]] <- list(estimate = tab[nm, "Estimate"], std_error = tab[nm, "Std. Error"],
                           p = tab[nm, "Pr(>|t|)"], ci_low = ci[nm, 1], ci_high = ci[nm, 2])
    }
  }
  list(formula = paste(deparse(formula, width.cutoff = 500L), collapse = " "), n = nobs(fit), r_squared = summary(fit)$r.squared, terms = terms)
}
regression <- list(
  villalta_gain = lm_one(villalta_gain ~ villalta_baseline + civiq20_baseline + age + stented_segments),
  civiq20_gain = lm_one(civiq20_gain ~ villalta_baseline + civiq20_baseline + age + stented_segments),
  aliased = lm_one(villalta_gain ~ villalta_baseline + age + age_twice),
  # R's factor(sex) coefficient "factor(sex)male" is patsy's "C(sex)[T.male]" (same treatment coding)
  factor_sex = lm_one(villalta_gain ~ age + factor(sex), rename = c("factor(sex)male" = "C(sex)[T.male]")),
  # no intercept: R's R-squared is then the uncentred one
  no_intercept = lm_one(villalta_gain ~ villalta_baseline - 1)
)

out <- list(
  generated_by = "tests/analyses/reference/reference_values.R",
  r_version = R.version.string,
  survival_version = as.character(packageVersion("survival")),
  quartiles = quartiles, binom = binom, km = km, wilcoxon = wilcoxon, regression = regression
)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, na = "null", pretty = TRUE), "r_reference.json")
cat("wrote r_reference.json\n")
