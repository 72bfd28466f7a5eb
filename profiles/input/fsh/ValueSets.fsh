// Value sets of the contract §1: what the adapters recognise, code by code.

RuleSet: PtsValueSetMeta
* ^version = "0.1.0"
* ^status = #draft
* ^experimental = false

ValueSet: IndexStentingVS
Id: index-stenting
Title: "Index stenting procedure codes"
Description: "Procedure codes recognised as venous stenting (contract §1): CPT 37238/37239, the seven ICD-10-PCS 067?3DZ codes, and the project code. The earliest completed one per patient sets day 0."
* insert PtsValueSetMeta
* $cpt#37238
* $cpt#37239
* $icd10pcs#06703DZ
* $icd10pcs#067C3DZ
* $icd10pcs#067D3DZ
* $icd10pcs#067F3DZ
* $icd10pcs#067G3DZ
* $icd10pcs#067M3DZ
* $icd10pcs#067N3DZ
* $pts#venous-stenting

ValueSet: ReinterventionVS
Id: reintervention
Title: "Reintervention procedure codes"
Description: "Procedure codes recognised as a reintervention when dated after day 0 (contract §1): venous stenting, CPT angioplasty 37248/37249, mechanical thrombectomy 37187/37188, thrombolysis 37212/37214, ICD-10-PCS 067?3ZZ (dilation without device) and 06C?3ZZ (extirpation), and the project code."
* insert PtsValueSetMeta
* include codes from valueset IndexStentingVS
* $cpt#37248
* $cpt#37249
* $cpt#37187
* $cpt#37188
* $cpt#37212
* $cpt#37214
* $pts#reintervention
* include codes from system $icd10pcs where code regex "06[7C].3ZZ"

ValueSet: ReinterventionReasonVS
Id: reintervention-reason
Title: "Reintervention reason"
Description: "Procedure.reasonCode of a reintervention (contract §1); without one, the latest patency finding at or before it gives the reason (none: stenosis)."
* insert PtsValueSetMeta
* $pts#stenosis
* $pts#occlusion

ValueSet: PatencyStatusVS
Id: patency-status
Title: "Stent patency status"
Description: "Value of a patency finding (Observation code pts#stent-patency): patent, stenosis > 50 %, occluded. A valueQuantity in % diameter reduction is also accepted: 100 occluded, > 50 stenosis, else patent."
* insert PtsValueSetMeta
* $pts#patent
* $pts#stenosis
* $pts#occluded

ValueSet: TechnicalOutcomeVS
Id: technical-outcome
Title: "Technical outcome of a stenting procedure"
Description: "Procedure.outcome of the index procedure and of reinterventions (contract §1): SNOMED CT 385669000 (success); 385671000 and 385670004 (failure); the project codes technical-success and technical-failure."
* insert PtsValueSetMeta
* $sct#385669000
* $sct#385671000
* $sct#385670004
* $pts#technical-success
* $pts#technical-failure

ValueSet: TechnicalSuccessVS
Id: technical-success
Title: "Technical success codes"
Description: "The codes of TechnicalOutcomeVS that mean success."
* insert PtsValueSetMeta
* $sct#385669000
* $pts#technical-success

ValueSet: TechnicalFailureVS
Id: technical-failure
Title: "Technical failure codes"
Description: "The codes of TechnicalOutcomeVS that mean failure (any failure among the index-day procedures makes the index procedure a failure)."
* insert PtsValueSetMeta
* $sct#385671000
* $sct#385670004
* $pts#technical-failure

ValueSet: StentedSegmentVS
Id: stented-segment
Title: "Stented venous segment"
Description: "Procedure.bodySite of the index procedure (SNOMED CT): inferior vena cava, common iliac, external iliac, common femoral, femoral and deep femoral vein. Side is ignored; common femoral, femoral and deep femoral are below the inguinal ligament."
* insert PtsValueSetMeta
* $sct#64131007
* $sct#46027005
* $sct#63507001
* $sct#397363009
* $sct#397364003
* $sct#23438002

ValueSet: ImagingMethodVS
Id: imaging-method
Title: "Imaging method of a patency finding"
Description: "Observation.method of a patency finding, kept for reporting: SNOMED CT 16310003 ultrasonography, 77477000 computed tomography."
* insert PtsValueSetMeta
* $sct#16310003
* $sct#77477000

ValueSet: VillaltaClassVS
Id: villalta-class
Title: "Villalta severity class"
Description: "The four Villalta classes (contract §2)."
* insert PtsValueSetMeta
* include codes from system $villalta-class

ValueSet: Civiq20DimensionVS
Id: civiq20-dimension
Title: "CIVIQ-20 dimension"
Description: "The four CIVIQ-20 dimensions."
* insert PtsValueSetMeta
* include codes from system $civiq20-dimension
