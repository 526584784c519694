// The canonical GPU catalog: one model id per card, whatever name the driver reports, so
// offers are standard and comparable. Figures are rough dense throughput in TFLOPS (FP16 on
// tensor cores where the card has them), for comparing offers, not for billing.

export interface GpuModel {
  id: string;
  vendor: 'nvidia';
  /** Names as `nvidia-smi --query-gpu=name` prints them. */
  names: readonly string[];
  vramGb: number;
  fp16Tflops: number;
  fp32Tflops: number;
  /**
   * Dense INT8 tensor TOPS (no structured sparsity) of the slowest card the id covers, from
   * NVIDIA's datasheets and the Ampere GA102 and Ada Lovelace whitepapers; the capacity challenge's
   * deadline is derived from it (src/inspections/sizing.ts). Volta has no INT8 tensor cores: V100
   * is its DP4A rate, 4 × FP32 of the PCIe card.
   */
  int8Tops: number;
}

export const GPU_MODELS: readonly GpuModel[] = [
  { id: 'h200-141gb', vendor: 'nvidia', names: ['NVIDIA H200', 'NVIDIA H200 NVL'], vramGb: 141, fp16Tflops: 989, fp32Tflops: 67, int8Tops: 1671 }, // H200 NVL; SXM 1,979
  { id: 'h100-80gb', vendor: 'nvidia', names: ['NVIDIA H100 80GB HBM3', 'NVIDIA H100 PCIe', 'NVIDIA H100 NVL', 'NVIDIA H100'], vramGb: 80, fp16Tflops: 756, fp32Tflops: 51, int8Tops: 1513 }, // PCIe; SXM 1,979, NVL 1,671
  { id: 'a100-80gb', vendor: 'nvidia', names: ['NVIDIA A100-SXM4-80GB', 'NVIDIA A100 80GB PCIe', 'NVIDIA A100-PCIE-80GB'], vramGb: 80, fp16Tflops: 312, fp32Tflops: 19.5, int8Tops: 624 },
  { id: 'a100-40gb', vendor: 'nvidia', names: ['NVIDIA A100-SXM4-40GB', 'NVIDIA A100-PCIE-40GB'], vramGb: 40, fp16Tflops: 312, fp32Tflops: 19.5, int8Tops: 624 },
  { id: 'l40s-48gb', vendor: 'nvidia', names: ['NVIDIA L40S'], vramGb: 48, fp16Tflops: 362, fp32Tflops: 91.6, int8Tops: 733 },
  { id: 'l40-48gb', vendor: 'nvidia', names: ['NVIDIA L40'], vramGb: 48, fp16Tflops: 181, fp32Tflops: 90.5, int8Tops: 362 },
  { id: 'a6000-48gb', vendor: 'nvidia', names: ['NVIDIA RTX A6000'], vramGb: 48, fp16Tflops: 155, fp32Tflops: 38.7, int8Tops: 310 },
  { id: 'rtx-6000-ada-48gb', vendor: 'nvidia', names: ['NVIDIA RTX 6000 Ada Generation'], vramGb: 48, fp16Tflops: 364, fp32Tflops: 91.1, int8Tops: 728 },
  { id: 'a10-24gb', vendor: 'nvidia', names: ['NVIDIA A10'], vramGb: 24, fp16Tflops: 125, fp32Tflops: 31.2, int8Tops: 250 },
  { id: 'l4-24gb', vendor: 'nvidia', names: ['NVIDIA L4'], vramGb: 24, fp16Tflops: 121, fp32Tflops: 30.3, int8Tops: 242 },
  { id: 'rtx-4090-24gb', vendor: 'nvidia', names: ['NVIDIA GeForce RTX 4090'], vramGb: 24, fp16Tflops: 165, fp32Tflops: 82.6, int8Tops: 660 },
  { id: 'rtx-3090-24gb', vendor: 'nvidia', names: ['NVIDIA GeForce RTX 3090', 'NVIDIA GeForce RTX 3090 Ti'], vramGb: 24, fp16Tflops: 71, fp32Tflops: 35.6, int8Tops: 284 }, // 3090 Ti 320
  { id: 'rtx-4080-16gb', vendor: 'nvidia', names: ['NVIDIA GeForce RTX 4080', 'NVIDIA GeForce RTX 4080 SUPER'], vramGb: 16, fp16Tflops: 97, fp32Tflops: 48.7, int8Tops: 390 }, // 4080 SUPER 418
  { id: 'rtx-3080-10gb', vendor: 'nvidia', names: ['NVIDIA GeForce RTX 3080'], vramGb: 10, fp16Tflops: 59, fp32Tflops: 29.8, int8Tops: 238 },
  { id: 't4-16gb', vendor: 'nvidia', names: ['Tesla T4', 'NVIDIA T4'], vramGb: 16, fp16Tflops: 65, fp32Tflops: 8.1, int8Tops: 130 },
  { id: 'v100-32gb', vendor: 'nvidia', names: ['Tesla V100-SXM2-32GB', 'Tesla V100-PCIE-32GB', 'Tesla V100S-PCIE-32GB'], vramGb: 32, fp16Tflops: 125, fp32Tflops: 15.7, int8Tops: 56 },
  { id: 'v100-16gb', vendor: 'nvidia', names: ['Tesla V100-SXM2-16GB', 'Tesla V100-PCIE-16GB'], vramGb: 16, fp16Tflops: 125, fp32Tflops: 15.7, int8Tops: 56 },
];

export const GPU_MODEL_IDS = GPU_MODELS.map((m) => m.id);

const normalise = (name: string) => name.trim().toLowerCase().replace(/\s+/g, ' ');
const BY_NAME = new Map(GPU_MODELS.flatMap((m) => m.names.map((n) => [normalise(n), m] as const)));

/**
 * The catalog model for a reported name, or null when the card is not in the catalog.
 * Memory breaks ties between cards that report one name in several sizes.
 */
export function matchGpuModel(name: string, memoryMib?: number | null): GpuModel | null {
  const model = BY_NAME.get(normalise(name));
  if (!model) return null;
  if (memoryMib !== undefined && memoryMib !== null) {
    const gb = memoryMib / 1024;
    // A card with clearly less memory than the model promises is not that model.
    if (gb < model.vramGb * 0.9) return null;
  }
  return model;
}

export function gpuModel(id: string): GpuModel | null {
  return GPU_MODELS.find((m) => m.id === id) ?? null;
}
