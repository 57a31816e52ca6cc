-- name: samples-missing-files
-- description: Active samples with no file of a kind in S3 (fastq, bam, cram, bai, crai, vcf, gvcf, tbi) as of the last objects sync
-- params: kind
-- choices: kind=fastq|bam|cram|bai|crai|vcf|gvcf|tbi|other
SELECT s.sample_id,
       s.cohort,
       (SELECT count(*) FROM objects o
        WHERE o.sample_id = s.sample_id AND o.removed_at IS NULL) AS other_files,
       (SELECT group_concat(DISTINCT o.kind) FROM objects o
        WHERE o.sample_id = s.sample_id AND o.removed_at IS NULL) AS kinds_present
FROM samples s
WHERE s.status <> 'dropped'
  AND NOT EXISTS (SELECT 1 FROM objects o
                  WHERE o.sample_id = s.sample_id AND o.kind = :kind AND o.removed_at IS NULL)
ORDER BY s.sample_id;
