// One Measure per measure id of contract §4. A MeasureReport names `<url>|<version>`. Each Measure's group
// declares its populations (the counts a report carries) and, in the statistic extension (name only), the
// statistics of its results.csv rows. Scoring and improvement notation match the built-in analyses
// (fhir_pts.analyses *.AnalysisInfo); tests/profiles checks that they agree.

RuleSet: PtsMeasure(id, name, title)
* url = "https://fhir-pts.org/fhir/Measure/{id}"
* version = "0.1.0"
* name = "{name}"
* title = "{title}"
* status = #draft
* experimental = false
* type = $measure-type#outcome
* subjectCodeableConcept = http://hl7.org/fhir/resource-types#Patient

RuleSet: Population(code, criteria)
* group[0].population[+].code = $measure-population#{code}
* group[0].population[=].criteria.language = #text/plain
* group[0].population[=].criteria.expression = "{criteria}"

RuleSet: IndexPopulation
* insert Population(initial-population, Patients with an index stenting Procedure [contract §1])

RuleSet: Stat(name)
* group[0].extension[+].url = "https://fhir-pts.org/fhir/StructureDefinition/statistic"
* group[0].extension[=].extension[0].url = "name"
* group[0].extension[=].extension[0].valueString = "{name}"

RuleSet: ProportionPopulations(denominator, numerator, exclusion)
* insert IndexPopulation
* insert Population(denominator, {denominator})
* insert Population(denominator-exclusion, {exclusion})
* insert Population(numerator, {numerator})

RuleSet: ProportionStatistics
* insert Stat(numerator)
* insert Stat(denominator)
* insert Stat(proportion)

RuleSet: ScorePopulations(observation)
* insert IndexPopulation
* insert Population(measure-population, Every patient of the initial population)
* insert Population(measure-population-exclusion, Patients without a complete pair of scored assessments)
* insert Population(measure-observation, {observation})
* insert Stat(n_pairs)
* insert Stat(baseline_median)
* insert Stat(baseline_q1)
* insert Stat(baseline_q3)
* insert Stat(followup_median)
* insert Stat(followup_q1)
* insert Stat(followup_q3)
* insert Stat(gain_mean)
* insert Stat(wilcoxon)

RuleSet: PatencyStatistics
* insert Stat(patients)
* insert Stat(events)
* insert Stat(patent_at_last_follow_up)
* insert Stat(proportion_at_last_follow_up)
* insert Stat(km_6m)
* insert Stat(km_12m)
* insert Stat(km_24m)
* insert Stat(km_36m)
* insert Stat(at_risk_6m)
* insert Stat(at_risk_12m)
* insert Stat(at_risk_24m)
* insert Stat(at_risk_36m)

RuleSet: RegressionPopulations
* insert IndexPopulation
* insert Population(measure-population, Every patient of the initial population)
* insert Population(measure-population-exclusion, Patients with a missing value in the model variables [complete cases only])
* insert Stat(n)
* insert Stat(r_squared)
* insert Stat(coef:intercept)
* insert Stat(coef:baseline_villalta)
* insert Stat(coef:baseline_civiq20)
* insert Stat(coef:age)
* insert Stat(coef:stented_segments)

Instance: cohort
InstanceOf: Measure
Usage: #definition
* insert PtsMeasure(cohort, Cohort, Cohort demographics)
* description = "Patients with an index stenting procedure: number, sex, age at the index procedure (years)."
* scoring = $measure-scoring#cohort
* insert IndexPopulation
* insert Stat(patients)
* insert Stat(female)
* insert Stat(male)
* insert Stat(age_mean)
* insert Stat(age_sd)
* insert Stat(age_min)
* insert Stat(age_max)

Instance: technical-success
InstanceOf: Measure
Usage: #definition
* insert PtsMeasure(technical-success, TechnicalSuccess, Immediate technical success)
* description = "Patients whose index procedure succeeded, among those whose outcome is recorded; proportion with its 95 % Clopper-Pearson CI. Unknown outcomes are left out of numerator and denominator."
* scoring = $measure-scoring#proportion
* improvementNotation = $measure-improvement-notation#increase
* insert ProportionPopulations(Every patient of the initial population, Patients whose index procedure outcome is success, Patients whose index procedure outcome is unknown)
* insert ProportionStatistics

Instance: major-complications
InstanceOf: Measure
Usage: #definition
* insert PtsMeasure(major-complications, MajorComplications, Major complications of the index procedure)
* description = "Patients with a major complication of the index procedure, among every patient with an index procedure; proportion with its 95 % Clopper-Pearson CI."
* scoring = $measure-scoring#proportion
* improvementNotation = $measure-improvement-notation#decrease
* insert ProportionPopulations(Every patient of the initial population, Patients with a major complication of the index procedure, Patients whose complication status is unknown)
* insert ProportionStatistics

Instance: imaging-follow-up
InstanceOf: Measure
Usage: #definition
* insert PtsMeasure(imaging-follow-up, ImagingFollowUp, Imaging follow-up)
* description = "Months from the index procedure to the last patency finding (0 when none): median and quartiles; reverse Kaplan-Meier median follow-up of the secondary-patency times."
* scoring = $measure-scoring#continuous-variable
* improvementNotation = $measure-improvement-notation#increase
* insert IndexPopulation
* insert Population(measure-population, Every patient of the initial population)
* insert Population(measure-population-exclusion, Patients whose imaging follow-up time is unknown)
* insert Population(measure-observation, Imaging follow-up in months [median])
* insert Stat(median_months)
* insert Stat(q1_months)
* insert Stat(q3_months)
* insert Stat(reverse_km_median_months)

Instance: primary-patency
InstanceOf: Measure
Usage: #definition
* insert PtsMeasure(primary-patency, PrimaryPatency, Primary patency)
* description = "Primary patency (lost at the first stenosis or occlusion finding or reintervention): patients patent at their last follow-up, Kaplan-Meier estimate (95 % log-log CI) and number at risk at 6, 12, 24 and 36 months."
* scoring = $measure-scoring#proportion
* improvementNotation = $measure-improvement-notation#increase
* insert ProportionPopulations(Every patient of the initial population, Patients with primary patency at their last follow-up, Patients without a usable patency time)
* insert PatencyStatistics

Instance: primary-assisted-patency
InstanceOf: Measure
Usage: #definition
* insert PtsMeasure(primary-assisted-patency, PrimaryAssistedPatency, Primary-assisted patency)
* description = "Primary-assisted patency (lost at the first occlusion): patients patent at their last follow-up, Kaplan-Meier estimate (95 % log-log CI) and number at risk at 6, 12, 24 and 36 months."
* scoring = $measure-scoring#proportion
* improvementNotation = $measure-improvement-notation#increase
* insert ProportionPopulations(Every patient of the initial population, Patients with primary-assisted patency at their last follow-up, Patients without a usable patency time)
* insert PatencyStatistics

Instance: secondary-patency
InstanceOf: Measure
Usage: #definition
* insert PtsMeasure(secondary-patency, SecondaryPatency, Secondary patency)
* description = "Secondary patency (lost at the first occlusion never reopened): patients patent at their last follow-up, Kaplan-Meier estimate (95 % log-log CI) and number at risk at 6, 12, 24 and 36 months."
* scoring = $measure-scoring#proportion
* improvementNotation = $measure-improvement-notation#increase
* insert ProportionPopulations(Every patient of the initial population, Patients with secondary patency at their last follow-up, Patients without a usable patency time)
* insert PatencyStatistics

Instance: villalta
InstanceOf: Measure
Usage: #definition
* insert PtsMeasure(villalta, Villalta, Villalta score at baseline and 3 months)
* description = "Villalta total (0-33) at baseline and 3 months on complete pairs: medians (IQR), mean gain (baseline - 3 months) and the paired Wilcoxon signed-rank test. Lower is better."
* scoring = $measure-scoring#continuous-variable
* improvementNotation = $measure-improvement-notation#decrease
* insert ScorePopulations(Villalta total at 3 months [median])

Instance: civiq20
InstanceOf: Measure
Usage: #definition
* insert PtsMeasure(civiq20, Civiq20, CIVIQ-20 score at baseline and 3 months)
* description = "CIVIQ-20 raw total (20-100) at baseline and 3 months on complete pairs: medians (IQR), mean gain (baseline - 3 months) and the paired Wilcoxon signed-rank test. Lower is better."
* scoring = $measure-scoring#continuous-variable
* improvementNotation = $measure-improvement-notation#decrease
* insert ScorePopulations(CIVIQ-20 raw total at 3 months [median])

Instance: villalta-gain-regression
InstanceOf: Measure
Usage: #definition
* insert PtsMeasure(villalta-gain-regression, VillaltaGainRegression, Regression of the Villalta gain)
* description = "OLS with intercept of the Villalta gain (baseline - 3 months) on baseline Villalta, baseline CIVIQ-20, age and number of stented segments; complete cases; coefficients with 95 % CI and p-values."
* scoring = $measure-scoring#cohort
* insert RegressionPopulations

Instance: civiq20-gain-regression
InstanceOf: Measure
Usage: #definition
* insert PtsMeasure(civiq20-gain-regression, Civiq20GainRegression, Regression of the CIVIQ-20 gain)
* description = "OLS with intercept of the CIVIQ-20 gain (baseline - 3 months) on baseline Villalta, baseline CIVIQ-20, age and number of stented segments; complete cases; coefficients with 95 % CI and p-values."
* scoring = $measure-scoring#cohort
* insert RegressionPopulations
